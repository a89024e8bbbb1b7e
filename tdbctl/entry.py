"""The console entry point: `tdbctl --version` answers before Typer is imported (~75 ms of start),
and every command leaves without the interpreter's teardown (below)."""

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from tdbctl import __version__

        print(f"tdbctl {__version__}")
        return
    from tdbctl.cli import main as cli_main

    try:
        cli_main()
        code = 0
    except SystemExit as exit:
        code = exit.code
    _leave(code)


def _leave(code) -> None:
    """Exit as sys.exit would, minus the module teardown.

    With SQLAlchemy, Alembic and psycopg loaded, tearing the interpreter's ~600 modules down takes
    0.1-0.25 s after the work is done: a tenth of a quick command, and of the margin that backup
    and restore have over pg_dump and pg_restore. What that teardown would do that matters is done
    here: other threads are waited for, atexit handlers run (temporary files, logging), and the
    output is flushed. Files, sockets and locks are the kernel's to release either way.
    """
    import atexit
    import os
    import signal
    import threading

    # The work is done: a Ctrl-C now must not interrupt the exit half-way (and leave output unflushed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (tdbctl ... | head): the reader has gone
            code = code or 1
    os._exit(code)
