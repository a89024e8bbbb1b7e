"""Synthetic activity data: deterministic, marked, written in bulk, one transaction per domain.

Each domain's generator turns a plan (random seed, sessions, span) into chunks of rows, parents
before children. The dialect writes them (COPY on PostgreSQL, executemany on SQLite) inside
``bulk_load``, which switches row triggers off for the transaction: ChatTrain's activity trigger
would otherwise stamp every synthetic session with the time of the load.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from queue import Empty, Queue
from typing import Iterator

import sqlalchemy as sa

from tdbctl.ops.durations import utcnow
from tdbctl.partitions import make_room
from tdbctl.schema import metadata
from tdbctl.seed.progress import Progress
from tdbctl.seed.synthetic import markers
from tdbctl.seed.synthetic.common import DomainContext, Plan
from tdbctl.seed.synthetic.producer import Producers

CHUNK_SESSIONS = 250


def generators() -> dict:
    from tdbctl.seed.synthetic.academy import AcademyGenerator
    from tdbctl.seed.synthetic.chattrain import ChattrainGenerator
    from tdbctl.seed.synthetic.dispatch import DispatchGenerator
    from tdbctl.seed.synthetic.voice import VoiceGenerator

    return {g.domain: g for g in (DispatchGenerator, VoiceGenerator, AcademyGenerator, ChattrainGenerator)}


@dataclass
class SyntheticResult:
    dry_run: bool
    random_seed: int
    sessions: int
    start: datetime
    end: datetime
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    loaded_by: dict | None = None
    """The earlier run that loaded these very arguments' rows, when this one wrote nothing."""

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    @property
    def rows_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0


def generate(db, plan: Plan, domains: list[str], *, dry_run: bool = False, progress: Progress | None = None,
             chunk_sessions: int = CHUNK_SESSIONS, before=None, workers: int | None = None) -> SyntheticResult:
    """``before(conn, domain)`` runs first in each domain's transaction (a dry run's reference rows).

    Domains load in ``workers`` threads at once (the dialect's ``bulk_load_workers`` by default),
    each in its own transaction: a failure or an interrupt rolls back every domain not yet
    committed, and a domain's rows do not depend on which others run beside it.
    """
    progress = progress or Progress()
    result = SyntheticResult(dry_run, plan.random_seed, plan.sessions, plan.start, plan.end)
    workers = max(1, min(workers or db.dialect.bulk_load_workers(), len(domains)))
    cancelled = threading.Event()
    started = time.perf_counter()
    counts: dict[str, Counter] = {}
    producers = Producers(0 if dry_run or not _encodes(db, domains) else len(domains))
    if db.claim is not None:  # its thread only now: the producers were forked with this one alone
        db.claim.start_renewing()
    try:
        if workers == 1:
            for domain in domains:
                counts[domain] = _generate_domain(db, plan, domain, progress, dry_run, chunk_sessions, before,
                                                  cancelled, producers)
        else:
            _generate_concurrently(db, plan, domains, counts, progress, dry_run, chunk_sessions, before, cancelled,
                                   workers, producers)
    finally:
        producers.close()
        progress.close()
    result.seconds = time.perf_counter() - started
    for domain in domains:  # tables in domain order, whatever order the domains finished in
        for name in generators()[domain].tables:
            result.rows[name] = counts[domain][name]
    return result


class _Cancelled(Exception):
    """Another domain failed or the run was interrupted: roll this domain back."""


def _encodes(db, domains: list[str]) -> bool:
    """Whether the dialect takes rows encoded in another process (PostgreSQL's COPY text)."""
    name, columns = next(iter(generators()[domains[0]].tables.items()))
    return db.dialect.bulk_encoder(metadata.tables[name], columns) is not None


def _generate_concurrently(db, plan, domains, counts, progress, dry_run, chunk_sessions, before, cancelled,
                           workers, producers) -> None:
    from concurrent.futures import ThreadPoolExecutor, as_completed, wait

    # The largest domain first: started last, it would end alone, with the other core idle.
    domains = sorted(domains, key=lambda domain: -generators()[domain].rows_per_session)
    # The first domain starts alone, up to its first write: the lazy imports on that path
    # (psycopg's COPY, SQLAlchemy's compilers) then happen in one thread, since two threads
    # importing modules that import each other can see a half-initialised module.
    first_chunk = threading.Event()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tdbctl-domain") as pool:
        leader = pool.submit(_generate_domain, db, plan, domains[0], progress, dry_run, chunk_sessions, before,
                             cancelled, producers, first_chunk)
        futures = {leader: domains[0]}
        try:
            while not first_chunk.wait(0.05) and not leader.done():
                pass
            for domain in domains[1:]:
                futures[pool.submit(_generate_domain, db, plan, domain, progress, dry_run, chunk_sessions, before,
                                    cancelled, producers)] = domain
            for future in as_completed(futures):
                if future.exception() is not None:  # the first failure stops the domains still loading
                    cancelled.set()
        except BaseException:  # Ctrl-C while waiting: roll back what is not committed yet
            cancelled.set()
            wait(futures)
            raise
    errors = [f.exception() for f in futures if f.exception() is not None]
    first = next((e for e in errors if not isinstance(e, _Cancelled)), errors[0] if errors else None)
    if first is not None:
        raise first
    for future, domain in futures.items():
        counts[domain] = future.result()


def _generate_domain(db, plan, domain, progress, dry_run, chunk_sessions, before, cancelled, producers,
                     first_chunk: threading.Event | None = None) -> Counter:
    generator_class = generators()[domain]
    began = time.perf_counter()
    counts: Counter = Counter()
    with db.connect() as conn:
        transaction = conn.begin()
        try:
            db.dialect.begin_load(conn, list(generator_class.tables))
            if db.claim is not None:
                db.claim.check(conn)
            if before is not None:
                before(conn, domain)
            salt = count_rows(conn, generator_class.marker_table)
            generator = generator_class(DomainContext(plan, domain, salt))
            generator.prepare(conn)
            tables = {name: metadata.tables[name] for name in generator.tables}
            if not dry_run:  # rows in partitions of their months, not the DEFAULT one
                make_room(conn, db.dialect, metadata, tables.values(), plan.start, plan.end, utcnow())
            progress.start(domain, plan.sessions)
            with nullcontext() if dry_run else db.dialect.bulk_load(conn, list(tables.values())):
                batches, write = _batches(db, conn, generator, tables, plan.sessions, chunk_sessions, dry_run,
                                          producers)
                try:
                    for done, batch in batches:
                        if cancelled.is_set():
                            raise _Cancelled(domain)
                        for name, count, data in batch:  # parents first
                            if write is not None:
                                write(name, data)
                            counts[name] += count
                            if first_chunk is not None:  # the first write took every lazy import
                                first_chunk.set()
                        progress.advance(domain, done, sum(counts.values()))
                finally:
                    batches.close()
                if not dry_run:
                    for table in tables.values():
                        db.dialect.sync_sequences(conn, table)
            if cancelled.is_set():
                raise _Cancelled(domain)
        except BaseException:
            transaction.rollback()
            raise
        transaction.rollback() if dry_run else transaction.commit()
    progress.finish(domain, sum(counts.values()), time.perf_counter() - began)
    return counts


def _batches(db, conn, generator, tables: dict, sessions: int, chunk_sessions: int, dry_run: bool, producers):
    """The chunks as (sessions done, [(table, row count, data), ...]), parents first, and the
    function writing one table's data (None for a dry run); both closed with ``close()``.

    A child process generates and encodes them when there is one (see producer.py); otherwise a
    thread of this process generates them as tuples."""
    worker = None if dry_run else producers.take()
    if worker is not None:
        encoders = {name: db.dialect.bulk_encoder(tables[name], columns) for name, columns in generator.tables.items()}
        worker.start(generator, encoders, sessions, chunk_sessions)
        return worker, lambda name, data: db.dialect.bulk_write(conn, tables[name], generator.tables[name], data)

    def in_process():
        for done, batch in prefetched(_chunks(generator, sessions, chunk_sessions)):
            yield done, [(name, len(batch.get(name, ())), batch.get(name, ())) for name in generator.tables]

    write = None if dry_run else lambda name, rows: db.dialect.bulk_insert(
        conn, tables[name], generator.tables[name], rows)
    return in_process(), write


def _chunks(generator, sessions: int, chunk_sessions: int) -> Iterator[tuple[int, dict]]:
    for first in range(0, sessions, chunk_sessions):
        count = min(chunk_sessions, sessions - first)
        yield first + count, generator.chunk(first, count)


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterator, depth: int = 2) -> Iterator:
    """Produce the next chunk on a thread while the database takes this one.

    Generation is Python work and the server's parsing and indexing happen in its own process:
    overlapped, a load takes about the longer of the two instead of their sum.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put(item)
        except BaseException as error:  # handed to the consumer, which raises it
            queue.put(_Failed(error))
        finally:
            queue.put(end)

    worker = threading.Thread(target=produce, name="tdbctl-synthetic", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not end:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                queue.get(timeout=0.05)
            except Empty:
                pass
        worker.join()


def count_rows(conn, qualified: str) -> int:
    table = metadata.tables[qualified]
    return conn.execute(sa.select(sa.func.count()).select_from(table).where(markers.where_synthetic(qualified))).scalar()


def present(conn, domains: list[str]) -> set[str]:
    """The domains that hold synthetic rows (one indexed probe of each domain's top table)."""
    found = set()
    for domain in domains:
        top = markers.tables_of(domain)[0]
        if conn.execute(sa.select(sa.exists().where(markers.where_synthetic(top)))).scalar():
            found.add(domain)
    return found


def count_synthetic(conn, domains: list[str]) -> dict[str, int]:
    return {name: count_rows(conn, name) for domain in domains for name in markers.tables_of(domain)}


def delete_synthetic(conn, domain: str) -> dict[str, int]:
    """Delete a domain's synthetic rows, children first (so counts are exact on both dialects)."""
    deleted = {}
    for name in markers.tables_of(domain, children_first=True):
        table = metadata.tables[name]
        deleted[name] = conn.execute(sa.delete(table).where(markers.where_synthetic(name))).rowcount
    return deleted
