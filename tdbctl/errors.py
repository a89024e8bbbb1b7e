"""Library exceptions. Each carries the exit code the CLI ends with; README's table lists them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    """Operational failure: server unreachable, authentication, SQL error, missing prerequisite."""
    USAGE = 2
    """Bad input: an option, a URL, an unknown revision."""
    CHECK_FAILED = 3
    """A check found something: drift between database and metadata, or pending migrations."""
    VALIDATION_FAILED = 4
    """An applied migration's script was edited afterwards (checksum mismatch) or is missing."""
    LOCKED = 5
    """Another tdbctl run holds the lock for this database."""
    NOT_CONFIRMED = 6
    """A destructive operation was not confirmed (declined at the prompt, or no terminal and no --yes)."""
    NOT_SET_UP = 7
    """The database is missing, has no tdbctl tables, or is not at this tdbctl's head: run tdbctl migrate."""
    INTERRUPTED = 130


class TdbError(Exception):
    """An error the CLI reports as one line and an exit code, without a traceback."""

    exit_code = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(TdbError):
    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    pass


class DatabaseError(TdbError):
    """The database could not be reached or refused the work."""


class ConnectFailed(DatabaseError):
    """The database could not be reached at all (server down, authentication, no such database)."""


class ConnectionLost(DatabaseError):
    """The connection went away during the work (server restart, terminated backend, a proxy's
    timeout): what was not committed was rolled back, and a new run continues."""


class PrerequisiteError(TdbError):
    """The server lacks something tdbctl needs (an extension, a privilege); nothing was changed."""


class CheckFailed(TdbError):
    exit_code = ExitCode.CHECK_FAILED


class ValidationFailed(TdbError):
    exit_code = ExitCode.VALIDATION_FAILED


class LockHeld(TdbError):
    exit_code = ExitCode.LOCKED


class NotSetUp(TdbError):
    """The database is not ready for the command: missing, not migrated, or behind this tdbctl."""

    exit_code = ExitCode.NOT_SET_UP


class NotConfirmed(TdbError):
    exit_code = ExitCode.NOT_CONFIRMED
