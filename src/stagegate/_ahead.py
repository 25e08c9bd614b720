"""Items made by a thread of their own, a few ahead of the loop that uses them.

A bulk import reads and checks a batch (mostly Arrow kernels) while it writes the one before
(mostly SQLite): both let go of the interpreter lock, so on two cores the work overlaps.

>>> list(ahead(iter(range(5))))
[0, 1, 2, 3, 4]
>>> def broken():
...     yield 1
...     raise ValueError("bad row")
>>> items = ahead(broken())
>>> next(items)
1
>>> next(items)
Traceback (most recent call last):
ValueError: bad row
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar, cast

__all__ = ["ahead", "wait_out"]

_T = TypeVar("_T")
_WAIT = 0.05  # seconds between looks at whether the consumer stopped


def wait_out(done: threading.Event) -> None:
    """Wait until ``done`` is set, through any Ctrl-C, then raise the interrupt if one came.

    For waiting on a worker thread that is stopping: an ``Event``, never ``Thread.join``, as
    a join interrupted by Ctrl-C can take a thread still running for stopped (CPython 3.11's
    ``_wait_for_tstate_lock`` releases the running thread's lock when interrupted), and the
    caller would then close what the thread still uses.
    """
    interrupted = False
    while True:
        try:  # the whole look in the try: Ctrl-C may land between two calls, not only in one
            if done.wait(_WAIT):
                break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt


def ahead(items: Iterator[_T], depth: int = 2) -> Generator[_T, None, None]:
    """Yield ``items``, made by a thread of their own at most ``depth`` ahead of the caller.

    What ``items`` raises is raised here, in the caller's thread, after the items made before
    it. When the caller stops early (``close()``, an exception, the generator collected), the
    thread stops at its next item, closes ``items`` (a generator's ``finally`` runs there) and
    is joined before the caller goes on, so nothing is left reading a file.
    """
    handed: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop, done = threading.Event(), threading.Event()

    def offer(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                handed.put(entry, timeout=_WAIT)
            except queue.Full:
                continue
            return True
        return False

    def make() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed over to the caller's thread
            offer((False, exc))
            return
        finally:
            close = getattr(items, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                done.set()
        offer((False, None))

    worker = threading.Thread(target=make, name="stagegate-ahead", daemon=True)
    worker.start()
    try:
        while True:
            made, value = handed.get()
            if made:
                yield cast("_T", value)
            elif isinstance(value, BaseException):
                raise value
            else:
                return
    finally:
        stop.set()
        wait_out(done)  # ``items`` is closed: the thread only has its last lines to run
        worker.join()
