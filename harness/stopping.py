"""When a run must stop early: a whole-run deadline, or SIGINT/SIGTERM from the tester or CI.

A :class:`Stop` is asked by the engine before each item and by the HTTP client before each
request; once it gives a reason, the stream ends, every rule that found no failure becomes
``error`` ("not evaluated: …") and the decision is "could-not-evaluate" — a partial report is
written, never a pass. A second signal ends the process at once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

DEFAULT_DEADLINE = 1800.0  # seconds: a CI job's budget for one run


class Interrupted(BaseException):
    """Raised by the signal handler while the run is reading the target, to leave a blocking call."""


class Stop:
    def __init__(self, deadline: float | None = DEFAULT_DEADLINE) -> None:
        self.seconds = deadline
        self.until = time.monotonic() + deadline if deadline else None
        self.signal: str | None = None
        self._reading = False

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        return None if self.until is None else max(0.0, self.until - time.monotonic())

    def __call__(self) -> str | None:
        if self.signal:
            return f"interrupted by {self.signal}"
        if self.until is not None and time.monotonic() >= self.until:
            return f"deadline of {self.seconds:g} s reached"
        return None

    @contextmanager
    def on_signals(self) -> Iterator[Stop]:
        """Within the block, the first SIGINT or SIGTERM asks the run to stop; the second one ends it."""
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.signal:
                signal.signal(signum, signal.SIG_DFL)
                raise KeyboardInterrupt
            self.signal = signal.Signals(signum).name
            if self._reading:
                raise Interrupted(self.signal)

        for s in previous:
            signal.signal(s, handler)
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """While the target is read, a signal also breaks out of a blocking request (the engine stops there)."""
        self._reading = True
        try:
            yield
        finally:
            self._reading = False
