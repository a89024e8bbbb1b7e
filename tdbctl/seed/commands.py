"""The seed library: one function per `tdbctl seed` action, each returning a plain report.

Every action refuses a database that is not at the migrations' head, holds the "seed" lock
for the database, and is recorded in tdbctl.runs.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from tdbctl.config import Settings
from tdbctl.errors import UsageError
from tdbctl.domains import only_installed
from tdbctl.runtime import HEAD, driver_message, open_database
from tdbctl.schema import DOMAINS

SEED_COMMAND = "seed"
DEFAULT_LOCK_WAIT_SECONDS = 10.0





def resolve_domains(domains: Sequence[str] | None) -> list[str]:
    if not domains:
        return list(DOMAINS)
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        raise UsageError(f"unknown domain {unknown[0]!r} (domains: {', '.join(DOMAINS)})")
    return [d for d in DOMAINS if d in domains]  # always in dependency-free, documented order


@contextmanager
def seed_run(settings: Settings, options: dict, *, dry_run: bool, lock_wait: float) -> Iterator[tuple]:
    """Open, check the revision, take the lock, record the run: yields (db, run record)."""
    from tdbctl.ops.claims import claimed
    from tdbctl.ops.runs import mark_killed, recorded_run

    with open_database(settings, HEAD) as db:
        # Renewed from the first domain's start (synthetic.generate forks its producers first).
        with claimed(db, SEED_COMMAND, lock_wait, renew=False):
            mark_killed(db.engine, "seed")
            with recorded_run(db.engine, "seed", options, dry_run=dry_run) as run:
                yield db, run


def seed_reference(
    settings: Settings,
    *,
    domains: Sequence[str] | None = None,
    dry_run: bool = False,
    seeds_root: Path | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
):
    """Upsert the reference data of the seed files, one transaction per domain."""
    from tdbctl.resources import seeds_dir
    from tdbctl.seed.files import domain_files, load_domain
    from tdbctl.seed.reference import ReferenceReport, apply_domain

    selected = resolve_domains(domains)
    root = Path(seeds_root) if seeds_root else seeds_dir()
    if seeds_root and not any(domain_files(root, domain) for domain in DOMAINS):
        raise UsageError(f"--seeds-dir {root}: " + ("no seed files (.yaml) under its domain folders"
                                                    if root.is_dir() else "no such directory"))
    # Every file is read and checked before the database is touched: a bad file changes nothing.
    loaded = {domain: load_domain(root, domain) for domain in selected}
    report = ReferenceReport(dry_run, selected, [f.name for files in loaded.values() for f in files])
    options = {"reference": True, "domains": selected, "dry_run": dry_run, "seeds_dir": str(root)}
    with seed_run(settings, options, dry_run=dry_run, lock_wait=lock_wait) as (db, run):
        selected = report.domains = only_installed(selected, db.domains, explicit=bool(domains))
        db.claim.start_renewing()
        translate = lambda orig: driver_message(orig, settings)  # noqa: E731
        for domain in selected:
            if not loaded[domain]:
                continue
            with db.connect() as conn:
                transaction = conn.begin()
                try:
                    db.claim.check(conn)
                    apply_domain(conn, domain, loaded[domain], report, translate)
                except BaseException:
                    transaction.rollback()
                    raise
                if dry_run:
                    transaction.rollback()
                else:
                    transaction.commit()
        for table, count in report.rows_changed().items():
            run.add_rows(table, count)
    return report


def synthetic_plan(random_seed: int, sessions: int, span: str, until: str | None):
    from datetime import timedelta

    from tdbctl.ops.durations import EARLIEST, parse_date, parse_duration, utcnow
    from tdbctl.seed.synthetic.common import Plan

    if sessions < 1:
        raise UsageError("--sessions: give at least 1")
    length = parse_duration(span, option="--span")
    if length < timedelta(days=1):
        raise UsageError(f"--span: {span!r} is shorter than a day; synthetic sessions need room (use 90d, 18mo, 2y)")
    end = parse_date(until, option="--until") if until else utcnow().replace(second=0, microsecond=0)
    if end - length < EARLIEST:
        raise UsageError(f"--span {span} before --until {end:%Y-%m-%d} starts before {EARLIEST.year}")
    return Plan(random_seed=random_seed, sessions=sessions, start=end - length, end=end)


def generate_synthetic(
    settings: Settings,
    *,
    domains: Sequence[str] | None = None,
    sessions: int = 1000,
    span: str = "30mo",
    until: str | None = None,
    random_seed: int = 1,
    dry_run: bool = False,
    again: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
    progress=None,
    seeds_root: Path | None = None,
    plan=None,
):
    """Fill the activity tables with marked, deterministic synthetic rows (after `seed_reference`).

    The same arguments twice load one set: a run whose arguments match an earlier run's, with that
    run's rows still there, writes nothing and names the earlier run (``result.loaded_by``);
    ``again`` adds another set (each set differs from the ones already in the domain).

    ``plan`` is ``synthetic_plan(random_seed, sessions, span, until)`` made beforehand: a caller
    that checks the options before changing anything passes it, so the span stays the one checked.

    A dry run generates every row and writes none; it loads the reference rows first in the same
    (rolled back) transaction, so that it works on a database that has none yet.
    """
    from tdbctl.seed import synthetic

    selected = resolve_domains(domains)
    plan = plan or synthetic_plan(random_seed, sessions, span, until)
    before = _reference_loader(settings, seeds_root) if dry_run else None
    arguments = {"domains": selected, "sessions": sessions, "span": span, "until": until, "random_seed": random_seed}
    options = {"synthetic": True, "domains": selected, "sessions": sessions, "span": span,
               "until": plan.end.isoformat(), "random_seed": random_seed, "dry_run": dry_run,
               "arguments": arguments}
    with seed_run(settings, options, dry_run=dry_run, lock_wait=lock_wait) as (db, run):
        selected = only_installed(selected, db.domains, explicit=bool(domains))
        earlier = None if dry_run or again else _loaded_before(db, arguments, selected, run.id)
        if earlier is not None:
            run.message = f"nothing to do: run {earlier['id']} loaded synthetic rows with the same arguments"
            return synthetic.SyntheticResult(False, random_seed, sessions, plan.start, plan.end, loaded_by=earlier)
        result = synthetic.generate(db, plan, selected, dry_run=dry_run, progress=progress, before=before)
        if not dry_run:
            for table, count in result.rows.items():
                run.add_rows(table, count)
    return result


def _loaded_before(db, arguments: dict, domains: list[str], this_run: int) -> dict | None:
    """The latest earlier run that loaded synthetic rows with these very arguments, if its rows
    are still there (--remove-synthetic since then makes the same arguments load again)."""
    import sqlalchemy as sa

    from tdbctl.schema.bookkeeping import runs
    from tdbctl.seed import synthetic

    with db.connect() as conn:
        found = conn.execute(
            sa.select(runs.c.id, runs.c.finished_at, runs.c.options, runs.c.rows)
            .where(runs.c.command == SEED_COMMAND, runs.c.status == "succeeded", runs.c.id != this_run)
            .order_by(runs.c.id.desc())).all()
        for run_id, finished, options, rows in found:
            if (options or {}).get("arguments") == arguments and rows:
                if synthetic.present(conn, domains) == set(domains):
                    return {"id": run_id, "finished_at": finished, "rows": sum(rows.values())}
                return None
    return None


def _reference_loader(settings: Settings, seeds_root: Path | None):
    from tdbctl.resources import seeds_dir
    from tdbctl.seed.files import load_domain
    from tdbctl.seed.reference import ReferenceReport, apply_domain

    root = Path(seeds_root) if seeds_root else seeds_dir()

    def load(conn, domain: str) -> None:
        report = ReferenceReport(True, [domain])
        apply_domain(conn, domain, load_domain(root, domain), report, lambda orig: driver_message(orig, settings))

    return load


def count_synthetic(settings: Settings, *, domains: Sequence[str] | None = None) -> dict[str, int]:
    from tdbctl.seed import synthetic

    selected = resolve_domains(domains)
    with open_database(settings, HEAD) as db:
        selected = only_installed(selected, db.domains, explicit=bool(domains))
        with db.connect() as conn:
            return synthetic.count_synthetic(conn, selected)


def remove_synthetic(
    settings: Settings, *, domains: Sequence[str] | None = None, lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS
) -> dict[str, int]:
    """Delete every synthetic row of the domains, one transaction per domain; returns rows per table."""
    from tdbctl.seed import synthetic

    selected = resolve_domains(domains)
    removed: dict[str, int] = {}
    with seed_run(settings, {"remove_synthetic": True, "domains": selected}, dry_run=False,
                  lock_wait=lock_wait) as (db, run):
        selected = only_installed(selected, db.domains, explicit=bool(domains))
        db.claim.start_renewing()
        for domain in selected:
            with db.connect() as conn, conn.begin():
                db.claim.check(conn)
                deleted = synthetic.delete_synthetic(conn, domain)
            removed.update(deleted)
            for table, count in deleted.items():
                run.add_rows(table, count)
    return removed
