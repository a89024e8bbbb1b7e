"""Claims: which tdbctl run may change this database now.

A claim is a row of ``tdbctl.claims``, taken, renewed and given back in short transactions of
their own. Nothing of it lives in a session (a session advisory lock is lost with its connection,
and through a transaction pooler it stays on a server connection the next client gets), so it
works through PgBouncer and survives a dropped connection without being released behind the
run's back:

- Every transaction that changes data under a claim first calls :meth:`Claim.check`, which finds
  the run's row and locks it (``FOR KEY SHARE``) until that transaction ends. A run whose row is
  gone stops before its next batch (:class:`ClaimLost`); a run that takes over a claim must delete
  the old row first, which waits for a batch in flight to commit or roll back. So a batch never
  commits without its claim, and no two runs' batches interleave.
- On PostgreSQL a claim is a lease: a thread renews it every RENEW_SECONDS; one not renewed for
  LEASE_SECONDS (the run killed on another machine, its connections gone) may be taken over. On
  any dialect, a claim whose process is gone from this machine is taken over at once.
- What excludes what: ``schema`` (migrate) excludes everything; ``data`` (cleanup, archive,
  archive restore, seed) excludes data and schema; ``reindex`` excludes reindex and schema.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from tdbctl.errors import LockHeld, NotSetUp, TdbError

LEASE_SECONDS = 30.0
RENEW_SECONDS = 5.0
POLL_SECONDS = 0.25
TAKE_LOCK_TIMEOUT = 2.0
"""How long taking a claim waits for a batch in flight that holds the row it would replace."""

SCOPES = {
    "migrate": "schema", "restore": "schema",
    "cleanup": "data", "archive": "data", "partitions": "data", "archive restore": "data", "seed": "data",
    "import": "data",
    "reindex": "reindex",
}
EXCLUDES = {"schema": ("schema", "data", "reindex"), "data": ("schema", "data"), "reindex": ("schema", "reindex")}


class ClaimLost(TdbError):
    """The run's claim was taken over or removed while it ran: it stopped before its next batch."""


@dataclass(frozen=True)
class Holder:
    command: str
    host: str
    pid: int
    acquired_at: object

    def describe(self) -> str:
        from datetime import timezone

        since = ""
        if self.acquired_at is not None:
            moment = self.acquired_at
            moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment  # SQLite's are UTC already
            since = f", since {moment:%Y-%m-%d %H:%M:%S} UTC"
        return f"tdbctl {self.command} (pid {self.pid} on {self.host}{since})"


def _table():
    from tdbctl.schema.bookkeeping import claims

    return claims


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), which a reused pid does not share."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def gone_from_this_host(row, host: str) -> bool:
    """True only when the holder ran here and its process (that very process) no longer exists."""
    if row.host != host:
        return False
    try:
        os.kill(row.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's live process
    started = process_start(row.pid)
    return row.process_start is not None and started is not None and started != row.process_start


class Claim:
    """A claim this run holds; :meth:`check` inside every transaction that changes data."""

    def __init__(self, db, command: str, claim_id: int, token: str, lease: float | None):
        self.db, self.command, self.id, self.token, self.lease = db, command, claim_id, token, lease
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, conn) -> None:
        """Inside the caller's transaction: the claim is still ours, and stays ours until it ends.

        The row lock (FOR KEY SHARE) lets the renewal thread update the row meanwhile, and makes
        a run taking over wait until this transaction has committed or rolled back.
        """
        import sqlalchemy as sa

        claims = _table()
        found = conn.execute(
            sa.select(claims.c.id).where(claims.c.id == self.id, claims.c.token == self.token)
            .with_for_update(read=True, key_share=True)
        ).first()
        if found is None:
            self.lost.set()
            raise ClaimLost(
                f"tdbctl {self.command} lost its claim on the database (not renewed for {LEASE_SECONDS:g} s, "
                "so another run may take it over): stopped; nothing of the current batch was committed, "
                "and a new run continues where this one stopped")

    def renew(self) -> bool:
        """Extend the lease in a transaction of its own; False when the claim is gone."""
        import sqlalchemy as sa

        claims, dialect = _table(), self.db.dialect
        with self.db.engine.begin() as conn:
            dialect.set_lock_timeout(conn.exec_driver_sql, 1.0)
            return conn.execute(
                sa.update(claims).where(claims.c.id == self.id, claims.c.token == self.token)
                .values(lease_until=dialect.server_clock() + self.lease)
            ).rowcount == 1

    def _renew_forever(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                if not self.renew():
                    self.lost.set()
                    return
            except Exception:  # a lost connection or a row busy under our own batch: the next beat tries again
                continue

    def start_renewing(self) -> None:
        if self.lease is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._renew_forever, name="tdbctl-claim", daemon=True)
        self._thread.start()

    def release(self) -> bool:
        """Give the claim back; False when it was no longer ours."""
        import sqlalchemy as sa
        import sqlalchemy.exc as sa_exc

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        claims = _table()
        try:
            with self.db.engine.begin() as conn:
                return conn.execute(
                    sa.delete(claims).where(claims.c.id == self.id, claims.c.token == self.token)).rowcount == 1
        except sa_exc.DBAPIError:
            # The table went with `migrate down`, or the server with the connection: nothing to give back.
            return False


def has_claims_table(conn) -> bool:
    import sqlalchemy as sa

    from tdbctl.schema import TOOL_SCHEMA

    found = sa.inspect(conn).has_table("claims", schema=TOOL_SCHEMA)
    conn.rollback()
    return found


def take(db, command: str, wait_seconds: float = 0.0, *, renew: bool = True) -> Claim:
    """Take ``command``'s claim, polling up to ``wait_seconds``; LockHeld names who holds it.

    ``renew=False``: the caller starts the renewal thread itself (Claim.start_renewing) once it
    has forked what it forks, within the lease; a fork copies no thread, but a lock one held."""
    with db.engine.connect() as conn:
        if not has_claims_table(conn):
            raise NotSetUp(f"tdbctl {command} needs this tdbctl's bookkeeping tables (tdbctl.claims), which "
                           "the database does not have yet: run `tdbctl migrate` first")
    deadline = time.monotonic() + wait_seconds
    while True:
        outcome = _try_take(db, command)
        if isinstance(outcome, Claim):
            if renew:
                outcome.start_renewing()
            return outcome
        if time.monotonic() >= deadline:
            waited = f" (waited {wait_seconds:g} s)" if wait_seconds else ""
            if outcome:
                raise LockHeld(f"another {outcome[0].describe()} is running on this database{waited}")
            raise LockHeld(f"another tdbctl run is finishing a transaction under its claim{waited}; try again")
        time.sleep(POLL_SECONDS)


def _try_take(db, command: str):
    """One attempt: the Claim, or the live holders that exclude it (empty: a holder's batch was busy)."""
    import sqlalchemy as sa
    import sqlalchemy.exc as sa_exc

    claims, dialect = _table(), db.dialect
    scope = SCOPES[command]
    host = socket.gethostname()
    try:
        with db.engine.begin() as conn:
            dialect.serialize_claims(conn, claims, TAKE_LOCK_TIMEOUT)
            now = conn.execute(sa.select(dialect.server_clock())).scalar()
            rows = conn.execute(sa.select(claims).where(claims.c.scope.in_(EXCLUDES[scope]))).all()
            live = []
            for row in rows:
                if gone_from_this_host(row, host):
                    gone = sa.delete(claims).where(claims.c.id == row.id)
                elif row.lease_until is not None and row.lease_until < now:
                    # Compare-and-set: a holder that renewed meanwhile keeps its claim.
                    gone = sa.delete(claims).where(claims.c.id == row.id, claims.c.lease_until == row.lease_until)
                else:
                    live.append(row)
                    continue
                if conn.execute(gone).rowcount != 1:
                    live.append(row)
            if live:
                conn.rollback()
                return [Holder(r.command, r.host, r.pid, r.acquired_at) for r in live]
            token = str(uuid.uuid4())
            lease = dialect.claim_lease_seconds
            claim_id = conn.execute(sa.insert(claims).values(
                token=token, command=command, scope=scope, host=host, pid=os.getpid(),
                process_start=process_start(os.getpid()),
                lease_until=(dialect.server_clock() + lease) if lease is not None else None,
            ).returning(claims.c.id)).scalar_one()
    except sa_exc.DBAPIError as exc:
        if dialect.transient_error(exc) is None:
            raise
        return []
    return Claim(db, command, claim_id, token, lease)


@contextmanager
def claimed(db, command: str, wait_seconds: float = 0.0, *, renew: bool = True) -> Iterator[Claim]:
    """Hold ``command``'s claim for the block; LockHeld when a run it excludes holds one."""
    claim = take(db, command, wait_seconds, renew=renew)
    db.claim = claim
    try:
        yield claim
    finally:
        db.claim = None
        claim.release()
