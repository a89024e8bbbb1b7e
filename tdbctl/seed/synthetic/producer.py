"""Each domain's chunks made in a child process, as COPY payloads, while this one only streams them.

Generating and formatting rows is Python work: in the process that writes, it holds the one GIL
every domain's thread shares, and the server's backends wait for it. A child process per domain
takes the prepared generator (its random state included, so the rows are those it would have made
here) and sends back, chunk after chunk, each table's rows as bytes ready for COPY.

The children are forked when the run starts, while this process has a single thread: a fork
copies only the forking thread, and a lock another thread held at that moment would stay locked
in the child forever. With any other thread running, no child is made and the domains generate
in this process as before (same rows, slower). A child then waits for its one job on its own
pipe, of which it holds the only other end: when this process ends, even by SIGKILL, the child's
next read or write fails and it exits. It ignores SIGINT: Ctrl-C reaches the whole process group,
and it is this process that decides what to roll back and stops the children.
"""

from __future__ import annotations

import pickle
import signal
import threading
from typing import Iterator


class _Error:
    def __init__(self, error: BaseException):
        self.error = error


def _serve(own, inherited: list) -> None:
    """The child: one job (generator, encoders, sessions, chunk size), then its chunks, then None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for connection in inherited:  # the other ends: held here, they would hide this process's death
        connection.close()
    try:
        try:
            generator, encoders, sessions, chunk_sessions = pickle.loads(own.recv_bytes())
        except (EOFError, OSError):
            return  # not needed (or the parent is gone)
        try:
            for first in range(0, sessions, chunk_sessions):
                count = min(chunk_sessions, sessions - first)
                batch = generator.chunk(first, count)
                own.send((first + count, [(name, len(rows), encode(rows)) for name, encode in encoders.items()
                                          if (rows := batch.get(name))]))
        except OSError:
            return  # the parent is gone (a broken pipe): nothing left to do
        except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
            try:
                own.send(_Error(error))
            except (pickle.PicklingError, TypeError, AttributeError):
                own.send(_Error(RuntimeError(f"{type(error).__name__}: {error}")))
            return
        own.send(None)
    except OSError:
        pass
    finally:
        own.close()


class Producers:
    """``count`` child processes forked now, if this process has no other thread; else none."""

    def __init__(self, count: int):
        import multiprocessing

        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        if count < 1 or threading.active_count() != 1:
            return
        # The generators' modules, imported before the fork, are shared by every child.
        import tdbctl.dialects.copybinary  # noqa: F401
        from tdbctl.seed.synthetic import generators

        generators()
        context = multiprocessing.get_context("fork")
        pipes = [context.Pipe() for _ in range(count)]
        ends = [end for pair in pipes for end in pair]
        for ours, theirs in pipes:
            process = context.Process(target=_serve, args=(theirs, [e for e in ends if e is not theirs]),
                                      name="tdbctl-synthetic", daemon=True)
            process.start()
            self._idle.append(Worker(ours, process))
        for _, theirs in pipes:
            theirs.close()

    def take(self) -> "Worker | None":
        with self._lock:
            return self._idle.pop() if self._idle else None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


class Worker:
    """One child. ``start(...)`` hands it a domain's job; iterating gives (sessions done,
    [(table, rows, COPY bytes), ...]) in chunk order; ``close()`` stops it, whatever it is doing."""

    def __init__(self, pipe, process):
        self._pipe = pipe
        self._process = process
        self.domain = ""
        self._started = False

    def start(self, generator, encoders: dict, sessions: int, chunk_sessions: int) -> "Worker":
        self.domain = generator.domain
        self._started = True
        self._pipe.send_bytes(pickle.dumps((generator, encoders, sessions, chunk_sessions),
                                           protocol=pickle.HIGHEST_PROTOCOL))
        return self

    def __iter__(self) -> Iterator[tuple[int, list]]:
        while True:
            try:
                item = self._pipe.recv()
            except EOFError:
                self._process.join()
                raise RuntimeError(f"the process generating synthetic {self.domain} rows ended without them "
                                   f"(exit code {self._process.exitcode})") from None
            if item is None:
                return
            if isinstance(item, _Error):
                raise item.error
            yield item

    def close(self) -> None:
        self._pipe.close()
        if not self._started:
            self._process.join(timeout=1.0)  # without a job, it sees the closed pipe and leaves
        if self._process.is_alive():  # stopped mid-domain: its remaining rows are not wanted
            self._process.kill()
        self._process.join()

