"""A restored data directory started as a server of its own: on a free port, its socket in a private
directory, never archiving into the repository it came from; waited for until recovery ends."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tdbctl.backup.pgbackrest.program import run_as_prefix
from tdbctl.errors import CheckFailed, PrerequisiteError

HBA = "tdbctl_hba.conf"
LOG = "tdbctl-restore.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_pg_ctl(major: int, pg_bin: str | None) -> Path:
    """The pg_ctl of exactly the data directory's major version."""
    from tdbctl.backup.pgtools import candidate_dirs

    places = [Path(pg_bin)] if pg_bin else [Path(f"/usr/lib/postgresql/{major}/bin"), Path(f"/usr/pgsql-{major}/bin"),
                                            *(d for d, _ in candidate_dirs())]
    for directory in places:
        program = directory / "pg_ctl"
        if program.exists():
            out = subprocess.run([str(program), "--version"], capture_output=True, text=True).stdout
            match = re.search(r"\(PostgreSQL\) (\d+)", out)
            if match and int(match[1]) == major:
                return program
    raise PrerequisiteError(f"no pg_ctl of PostgreSQL {major} found to start the restored copy"
                            + (f" in {pg_bin}" if pg_bin else "") + ": set [backup.pgbackrest] pg_bin")


def major_of(data_dir: Path) -> int:
    return int((data_dir / "PG_VERSION").read_text().strip().split(".")[0])


@dataclass
class Instance:
    data_dir: Path
    user: str
    pg_ctl: Path
    port: int = field(default_factory=free_port)
    socket_dir: Path | None = None
    listen: str = "localhost"
    _pid: int | None = field(default=None, init=False)

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*run_as_prefix(self.user), str(self.pg_ctl), "-D", str(self.data_dir), *args],
                              capture_output=True, text=True, check=check, stdin=subprocess.DEVNULL)

    def prepare(self) -> None:
        """Files the copy needs to start on this machine as a private server."""
        owner = pwd.getpwnam(self.user)
        conf = self.data_dir / "postgresql.conf"
        if not conf.exists():  # Debian keeps it in /etc/postgresql: the defaults serve a restored copy
            conf.write_text("# written by tdbctl restore: the original configuration lives outside the data directory\n")
            os.chown(conf, owner.pw_uid, owner.pw_gid)
        # Unix sockets: trusted, in a directory only the owner (and root) can enter. TCP: the
        # copy's own rules, so its roles log in with the passwords they had.
        lines = ["local all all trust"]
        original = self.data_dir / "pg_hba.conf"
        if original.exists():
            lines += [line for line in original.read_text().splitlines()
                      if line.strip() and not line.lstrip().startswith(("#", "local"))]
        else:
            lines += ["host all all 127.0.0.1/32 scram-sha-256", "host all all ::1/128 scram-sha-256"]
        hba = self.data_dir / HBA
        hba.write_text("\n".join(lines) + "\n")
        os.chown(hba, owner.pw_uid, owner.pw_gid)
        hba.chmod(0o600)
        if self.socket_dir is None:
            self.socket_dir = Path(tempfile.mkdtemp(prefix="tdbctl-sock-"))
            os.chown(self.socket_dir, owner.pw_uid, owner.pw_gid)
            self.socket_dir.chmod(0o700)

    def start(self) -> None:
        self.prepare()
        options = (f"-c port={self.port} -c listen_addresses={self.listen} -c unix_socket_directories={self.socket_dir} "
                   f"-c hba_file={self.data_dir / HBA} -c archive_mode=off -c hot_standby=on")
        done = self._run("-l", str(self.log_file), "-o", options, "-W", "start", check=False)
        if done.returncode != 0:
            raise CheckFailed(f"the restored copy did not start: {(done.stderr or done.stdout).strip()[:300]}")
        deadline = time.monotonic() + 30
        while self._pid is None:  # pg_ctl -W returns before the postmaster writes its pid file
            try:
                self._pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                if time.monotonic() > deadline:
                    raise CheckFailed(f"the restored copy did not start: {self.failure()}") from None
                time.sleep(0.05)

    def running(self) -> bool:
        if self._pid is None:
            return self._run("status", check=False).returncode == 0
        try:
            os.kill(self._pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return (self.data_dir / "postmaster.pid").exists()

    def url(self, user: str, database: str) -> str:
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={self.port}"

    def wait_promoted(self, user: str, database: str, timeout: float, on_wait=None) -> None:
        """Until recovery has ended and the copy takes writes; the server's own reason if it stops first."""
        import psycopg

        deadline = time.monotonic() + timeout
        last_note = time.monotonic()
        while True:
            if not self.running():
                time.sleep(0.3)  # the log is written last
                raise CheckFailed(f"the restored copy stopped during recovery: {self.failure()}")
            try:
                with psycopg.connect(self.url(user, database), connect_timeout=5, autocommit=True) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise CheckFailed(f"recovery did not end within {timeout:.0f}s (log: {self.log_file})")
            if on_wait and time.monotonic() - last_note > 5:
                on_wait()
                last_note = time.monotonic()
            time.sleep(0.2)

    def failure(self) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return f"no log at {self.log_file}"
        fatal = [line for line in text.splitlines() if re.search(r"\b(FATAL|PANIC):", line)]
        line = fatal[-1] if fatal else (text.strip().splitlines() or ["(empty log)"])[-1]
        return re.sub(r"^.*?(FATAL|PANIC):\s*", "", line).strip()

    def reached(self, user: str, database: str) -> tuple[datetime | None, datetime | None, str | None]:
        """As the server logged them when recovery ended (after promotion the functions that tell
        them return nothing): the commit time of the last transaction replayed, that of the first
        one left out at the target, and the LSN redo ended at."""
        import psycopg

        text = self.log_file.read_text(errors="replace")
        redo = re.findall(r"redo done at ([0-9A-F]+/[0-9A-F]+)", text)
        last = re.findall(r"last completed transaction was at log time (.+?)\s*$", text, re.M)
        stop = re.findall(r"recovery stopping (?:before|after) (?:commit|abort) of transaction \d+, time (.+?)\s*$",
                          text, re.M)
        moments: list[datetime | None] = [None, None]
        with psycopg.connect(self.url(user, database), autocommit=True) as conn:
            for i, found in enumerate((last, stop)):
                if found:
                    moments[i] = conn.execute("SELECT %s::timestamptz", (found[-1],)).fetchone()[0]
        return moments[0], moments[1], (redo[-1] if redo else None)

    def stop(self) -> None:
        self._run("-m", "fast", "stop", check=False)

    def remove(self) -> None:
        if self.running():
            self._run("-m", "immediate", "stop", check=False)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
