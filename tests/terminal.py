"""Running tdbctl under a pseudo-terminal, the way a person at a shell meets it."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def read_until_closed(leader: int) -> bytes:
    """Everything the child writes, read as it comes (a full pty buffer would block it)."""
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        output += chunk
    return output


def run_on_terminal(args: list[str], *, env: dict, cwd=None, timeout: float = 120) -> tuple[int, str]:
    """`python -m tdbctl ARGS` on a pty: its exit code and what it drew."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "tdbctl", *args], stdin=follower, stdout=follower,
                               stderr=follower, env=env, cwd=cwd)
    os.close(follower)
    output = read_until_closed(leader)
    os.close(leader)
    return process.wait(timeout=timeout), output.decode(errors="replace")
