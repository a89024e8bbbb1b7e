"""`tdbctl seed`: reference data from the seed files, and synthetic volumes for rehearsal.

The library behind the command (sqlite-utils style): tests and scripts call these directly.

- :func:`seed_reference` upserts the reference rows of ``seeds/`` (one transaction per domain).
- :func:`generate_synthetic` fills the activity tables with deterministic, marked rows.
- :func:`count_synthetic` and :func:`remove_synthetic` find and delete those rows again.
"""

from tdbctl.seed.commands import (
    count_synthetic,
    generate_synthetic,
    remove_synthetic,
    resolve_domains,
    seed_reference,
)

__all__ = [
    "count_synthetic", "generate_synthetic", "remove_synthetic", "resolve_domains", "seed_reference",
]
