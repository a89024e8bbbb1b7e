"""--list and --history: the declared policies, and the recent runs."""

from __future__ import annotations

import sqlalchemy as sa


def describe_policies(metadata: sa.MetaData | None = None, policies=None) -> list[dict]:
    """Every declared policy as the user sees it, archive ones included."""
    from tdbctl.schema import metadata as default_metadata
    from tdbctl.schema import policies_of

    metadata = default_metadata if metadata is None else metadata
    policies = policies_of(metadata) if policies is None else policies
    described = []
    for policy in policies:
        table = metadata.tables[policy.table]
        condition = None
        if policy.condition is not None:
            expression = policy.condition(table)
            condition = " ".join(str(expression.compile(compile_kwargs={"literal_binds": True})).split())
        described.append({
            "policy": policy.name,
            "table": policy.table,
            "action": policy.action,
            "age_column": policy.age_column,
            "default_age": policy.default_age,
            "condition": condition,
            "archive_to": policy.archive_table or (f"status {policy.archive_status!r}" if policy.archive_status else None),
            "description": policy.description,
            "source": policy.source,
        })
    return described


def history(db, limit: int = 20) -> list[dict]:
    from tdbctl.cleanup.run import COMMAND
    from tdbctl.ops.runs import recent

    return recent(db.engine, COMMAND, limit)
