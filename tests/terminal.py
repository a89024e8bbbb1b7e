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


def screen(output: str, columns: int, lines: int) -> list[str]:
    """What a terminal of that size shows once ``output`` has been written to it: the last
    screenful, with cursor movements, clears and redraws applied (pyte, a VT100 emulator)."""
    import pyte

    emulated = pyte.Screen(columns, lines)
    stream = pyte.Stream(emulated)
    stream.feed(output.replace("\r\n", "\n").replace("\n", "\r\n"))
    return [line.rstrip() for line in emulated.display]


def scrollback(output: str, columns: int) -> list[str]:
    """Everything written, as lines of a terminal that wide (long lines wrap), escapes removed:
    what a person could scroll back through."""
    import pyte

    history = pyte.HistoryScreen(columns, 50, history=100_000)
    stream = pyte.Stream(history)
    stream.feed(output.replace("\r\n", "\n").replace("\n", "\r\n"))
    above = ["".join(char.data for char in line.values()).rstrip() if isinstance(line, dict)
             else "".join(line[x].data for x in range(columns)).rstrip() for line in history.history.top]
    return above + [line.rstrip() for line in history.display]
