"""A psql process as this process's own connection, for the backup's snapshot and counts.

A backup runs pg_dump from a snapshot that tdbctl exports and keeps open, and counts the rows in
that same snapshot while pg_dump works. Holding it through psql, one of the client programs a
backup needs anyway, costs about 10 ms to start; importing psycopg costs about 0.2 s, and that
was most of what separated `tdbctl backup` from running pg_dump by hand.

Statements go in on psql's standard input; each is followed by ``\\echo`` of a marker, so the rows
it printed (unaligned, tuples only, fields separated by the unit separator) end at the marker. With
ON_ERROR_STOP psql exits at the first error; its standard error becomes the one-line message.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid

from tdbctl.backup import pgtools
from tdbctl.errors import DatabaseError

FIELD = "\x1f"


class Rows:
    """What a statement returned: text values, as psql prints them (NULL as an empty string)."""

    def __init__(self, rows: list[tuple[str, ...]]):
        self.rows = rows

    def fetchone(self) -> tuple[str, ...] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple[str, ...]]:
        return self.rows


class NotConnected(DatabaseError):
    """psql ended before answering anything: it could not connect (or could not read the URL)."""


class PsqlSession:
    """``execute(sql)`` runs one statement (no parameters: the callers' SQL is their own text)."""

    def __init__(self, psql: str, uri: str, env: dict[str, str], scrub, shown_url: str):
        self._scrub, self._shown_url, self._answered = scrub, shown_url, False
        self._marker = f"--tdbctl-{uuid.uuid4().hex}--"
        self._errors = tempfile.TemporaryFile()
        self._process = pgtools.spawn(
            [psql, "-X", "-q", "-A", "-t", "-F", FIELD, "-v", "ON_ERROR_STOP=1", "--no-password", "-d", uri],
            env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors)

    def execute(self, sql: str) -> Rows:
        try:
            self._process.stdin.write(f"{sql};\n\\echo {self._marker}\n".encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            self._fail()
        rows = []
        while line := self._process.stdout.readline():
            text = line.decode().rstrip("\n")
            if text == self._marker:
                self._answered = True
                return Rows(rows)
            rows.append(tuple(text.split(FIELD)))
        self._fail()

    def _fail(self):
        code = self._process.wait()
        self._errors.seek(0)
        lines = [" ".join(line.split()) for line in self._errors.read().decode(errors="replace").splitlines()]
        reason = self._scrub(" ".join(line for line in lines if line).removeprefix("psql: error: "))
        if not self._answered:  # psql never got as far as answering: it could not connect
            raise NotConnected(f"cannot connect to {self._shown_url}: {reason or f'psql exit code {code}'}")
        raise DatabaseError(f"database error: {reason or f'psql ended (exit code {code})'}")

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._process.stdin.close()  # psql ends at the end of its input (an open transaction rolls back)
            except BrokenPipeError:
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()
        self._errors.close()

    def __enter__(self) -> "PsqlSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
