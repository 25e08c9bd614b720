"""Signals in tests: children that a test interrupts, and Ctrl-C in the test's own process.

``patch = ["subprocess"]`` measures every ``stagegate`` a test starts; the child writes its
coverage data when it exits, with SQLite journaling off. A signal that lands while it writes
leaves a broken data file, and the combine at the end of the run fails with an INTERNALERROR
after every test passed. A child a test signals or kills gets :func:`unmeasured_env`.

A Ctrl-C in the test's own process is sent by :func:`ctrl_c` or :func:`ctrl_c_once_waiting`
inside :func:`ctrl_c_seen`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType


def unmeasured_env() -> dict[str, str]:
    """This process's environment without the variables that start coverage in a child."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("COVERAGE_", "COV_CORE_"))
    }


def ctrl_c() -> None:
    """SIGINT to the main thread, as a terminal's Ctrl-C reaches a program.

    Not ``os.kill(os.getpid(), ...)`` from a helper thread: Linux may deliver that signal to
    the sending thread, and the main thread, asleep in a lock, then sees it only when it
    next wakes by itself (a test that waited 0.3 s for it failed on a loaded CI machine).
    """
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def ctrl_c_once_waiting(caller: str, timeout: float = 30) -> None:
    """:func:`ctrl_c` once the main thread waits on an event in the function named ``caller``.

    Sent sooner, the interrupt can land before the code under test is where the test means
    it to be (in ``Thread.start`` before the waiting begins, say).
    """
    main = threading.main_thread().ident or 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(main)
        while frame is not None and frame.f_back is not None:
            if frame.f_code.co_name == "wait" and frame.f_back.f_code.co_name == caller:
                ctrl_c()
                return
            frame = frame.f_back
        time.sleep(0.005)
    raise AssertionError(f"the main thread never waited in {caller}() within {timeout} s")


@contextlib.contextmanager
def ctrl_c_seen() -> Iterator[threading.Event]:
    """Python's Ctrl-C handler in place for the block, and an event set when it has run.

    Python keeps SIGINT ignored when it starts with SIGINT ignored (a job started in the
    background by a non-interactive shell, as CI may run one): there a Ctrl-C would never
    become ``KeyboardInterrupt``. A helper thread waits on the event instead of guessing
    how long the main thread takes to be interrupted.
    """
    seen = threading.Event()

    def interrupted(number: int, frame: FrameType | None) -> None:
        seen.set()
        signal.default_int_handler(number, frame)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)
