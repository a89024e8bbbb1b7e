"""The pgbackrest program: found, version-checked, and run as the data directory's owner.

pgBackRest reads the data directory and writes the repository that the server's archive_command
also writes, so every run is as the cluster's owner (through ``runuser`` when tdbctl runs as
root). It reaches the server through its Unix socket; a password, if one is needed, goes through
the environment (PGPASSWORD), never its configuration file or its command line.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tdbctl.config import mask_secrets
from tdbctl.errors import PrerequisiteError, TdbError

# The first pgBackRest release that supports each PostgreSQL major (pgBackRest's release notes).
SUPPORTS = {12: (2, 18), 13: (2, 29), 14: (2, 34), 15: (2, 41), 16: (2, 47), 17: (2, 53), 18: (2, 56)}


class PgBackRestFailed(TdbError):
    """pgBackRest ran and said no: its own first ERROR line, passwords masked."""


def find(binary: str | None) -> str:
    found = shutil.which(binary or "pgbackrest")
    if not found:
        where = f"{binary!r} ([backup.pgbackrest] bin)" if binary else "pgbackrest on PATH"
        raise PrerequisiteError(f"pgBackRest is not installed ({where} not found): "
                                "install it (Debian/Ubuntu: apt-get install pgbackrest)")
    return found


def version(path: str) -> tuple[int, int]:
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PrerequisiteError(f"{path} does not run: {exc}") from None
    match = re.search(r"pgBackRest (\d+)\.(\d+)", out)
    if not match:
        raise PrerequisiteError(f"{path} is not pgBackRest (its `version` printed {out.strip()[:60]!r})")
    return int(match[1]), int(match[2])


def check_supports(found: tuple[int, int], server_major: int) -> None:
    needed = SUPPORTS.get(server_major) or max(SUPPORTS.values())
    if found < needed or server_major > max(SUPPORTS):
        at_least = f"{needed[0]}.{needed[1]}" if server_major in SUPPORTS else "a release newer than this tdbctl knows"
        raise PrerequisiteError(
            f"pgBackRest {found[0]}.{found[1]} does not support PostgreSQL {server_major}: it needs pgBackRest "
            f"{at_least} or later (pgbackrest.org, or the PGDG apt repository)")


def owner_of(directory: str) -> str:
    try:
        return pwd.getpwuid(os.stat(directory).st_uid).pw_name
    except FileNotFoundError:
        raise PrerequisiteError(
            f"the data directory {directory} is not on this machine: pgBackRest must run on the database "
            "server (a managed database without file access keeps its provider's point-in-time recovery)") from None
    except PermissionError:
        raise PrerequisiteError(f"cannot read {directory}'s owner: run tdbctl as that user or root") from None


def run_as_prefix(user: str) -> list[str]:
    """``runuser`` when tdbctl is root and the owner is someone else; nothing when tdbctl is the owner."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    if me == user:
        return []
    if os.geteuid() == 0:
        return ["runuser", "-u", user, "--"]
    raise PrerequisiteError(f"pgBackRest must run as {user}, the data directory's owner; tdbctl runs as {me}: "
                            f"run it as {user} (sudo -u {user} tdbctl ...) or as root")


@dataclass
class Program:
    path: str
    user: str
    config: Path
    stanza: str
    password: str | None = None
    extra_env: dict = field(default_factory=dict)

    def argv(self, command: str, *args: str) -> list[str]:
        return [*run_as_prefix(self.user), self.path, f"--config={self.config}", f"--stanza={self.stanza}",
                "--log-level-console=warn", "--log-level-stderr=off", command, *args]

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGBACKREST_")}
        env.update(self.extra_env)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def run(self, command: str, *args: str, timeout: float | None = None) -> str:
        """Run to the end; its stdout, or PgBackRestFailed with its first error line."""
        try:
            done = subprocess.run(self.argv(command, *args), capture_output=True, text=True, timeout=timeout,
                                  env=self.env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PgBackRestFailed(f"pgbackrest {command} did not finish within {timeout:.0f}s") from None
        except OSError as exc:
            raise PgBackRestFailed(f"pgbackrest {command} could not be started: {exc}") from None
        if done.returncode != 0:
            raise PgBackRestFailed(f"pgbackrest {command} failed: {first_error(done.stdout + done.stderr)}")
        return done.stdout

    def json(self, command: str, *args: str, timeout: float | None = 120):
        return json.loads(self.run(command, "--output=json", *args, timeout=timeout) or "null")


def first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR:" in line] or lines or ["(no message)"]
    message = re.sub(r"^.*?ERROR:\s*(\[\d+\]:\s*)?", "", errors[0])
    return mask_secrets(message)
