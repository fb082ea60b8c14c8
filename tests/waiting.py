"""Waiting for something to happen, under a deadline, instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.05
) -> T:
    """Call ``predicate`` until it returns something true, and return that; after ``timeout_s``
    seconds an AssertionError says ``what`` was awaited and what the predicate last gave."""
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value
        waited = time.monotonic() - start
        if waited >= timeout_s:
            msg = f"waited {waited:.1f} s for {what}; the last check gave {value!r}"
            raise AssertionError(msg)
        time.sleep(interval_s)
