"""``stagegate._ahead.ahead``: a thread's items in order; its errors and early stops handed back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processes import ctrl_c_once_waiting, ctrl_c_seen
from stagegate._ahead import ahead


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stagegate-ahead"]


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=4))
def test_every_item_in_order(items: list[int], depth: int) -> None:
    assert list(ahead(iter(items), depth)) == items
    assert _workers() == []


@given(st.integers(min_value=0, max_value=20))
def test_an_error_comes_after_the_items_made_before_it(made: int) -> None:
    def broken() -> Iterator[int]:
        yield from range(made)
        raise ValueError("row 7: bad")

    items = ahead(broken())
    got = [next(items) for _ in range(made)]
    with pytest.raises(ValueError, match="row 7: bad"):
        next(items)
    assert got == list(range(made))
    assert _workers() == []


def test_the_thread_runs_at_most_depth_ahead() -> None:
    made: list[int] = []

    def counted() -> Iterator[int]:
        for i in range(100):
            made.append(i)
            yield i

    items = ahead(counted(), depth=2)
    assert next(items) == 0
    time.sleep(0.3)  # room for the thread to run as far ahead as it may
    # one taken, two waiting in the queue, one made and waiting for room
    assert len(made) <= 4
    items.close()
    assert _workers() == []


def test_an_early_stop_closes_the_source_and_joins_the_thread() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    items = ahead(endless())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed.is_set()
    assert _workers() == []


def test_an_error_in_the_loop_stops_the_thread() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            while True:
                yield 1
        finally:
            closed.set()

    def use() -> None:
        for _ in ahead(endless()):
            raise KeyError("the writer failed")

    with pytest.raises(KeyError):
        use()
    assert closed.is_set()
    assert _workers() == []


def test_a_wait_out_rides_out_ctrl_c_until_the_thread_is_done() -> None:
    """Ctrl-C while a stopping thread finishes: the wait goes on, then the interrupt is raised.

    ``Thread.join`` interrupted by Ctrl-C can take a running thread for stopped (CPython 3.11);
    the caller then closed a generator the thread was still running (``ValueError: generator
    already executing``, an internal error of ``stagegate import``).
    """
    from stagegate._ahead import wait_out

    done = threading.Event()
    with ctrl_c_seen() as seen:

        def finish_after_the_interrupt() -> None:
            ctrl_c_once_waiting("wait_out")
            seen.wait(30)
            time.sleep(0.3)  # the waiting goes on past the interrupt
            done.set()

        threading.Thread(target=finish_after_the_interrupt).start()
        with pytest.raises(KeyboardInterrupt):
            wait_out(done)
    assert seen.is_set()
    assert done.is_set()


def test_a_set_event_is_not_waited_for() -> None:
    from stagegate._ahead import wait_out

    done = threading.Event()
    done.set()
    wait_out(done)  # returns at once, raises nothing
