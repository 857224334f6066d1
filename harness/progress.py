"""Progress of long jobs (property runs, fuzz-export, reading a large export), for whoever is watching.

Library code says what it is doing with :func:`task` and ``advance``; the command line chooses
how that is shown (a live bar on a terminal, one line per finished task in a CI log, nothing
with ``--quiet``) by installing a :class:`Reporter` with :func:`reporting`. Nothing is shown
when no reporter is installed (library use, the pytest plugin).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    def started(self, name: str, total: int | None, unit: str) -> None: ...
    def advanced(self, name: str, done: int) -> None: ...
    def finished(self, name: str, done: int, seconds: float, note: str) -> None: ...


_current: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("care_assure_progress", default=None)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Show progress with ``reporter`` while the block runs (None: show nothing)."""
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)


class Task:
    """One long job: count what is done; ``note`` says how it ended (e.g. 'failed')."""

    def __init__(self, name: str, total: int | None, unit: str) -> None:
        self.name, self.total, self.unit = name, total, unit
        self.done, self.note = 0, ""
        self.reporter = _current.get()
        self.started = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.reporter is not None:
            self.reporter.advanced(self.name, self.done)


@contextmanager
def task(name: str, total: int | None = None, unit: str = "examples") -> Iterator[Task]:
    job = Task(name, total, unit)
    if job.reporter is not None:
        job.reporter.started(name, total, unit)
    try:
        yield job
    finally:
        if job.reporter is not None:
            job.reporter.finished(name, job.done, time.monotonic() - job.started, job.note)


class LineReporter:
    """For logs and pipes: one line per finished task, nothing in between."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.units: dict[str, str] = {}

    def started(self, name: str, total: int | None, unit: str) -> None:
        self.units[name] = unit

    def advanced(self, name: str, done: int) -> None:
        return

    def finished(self, name: str, done: int, seconds: float, note: str) -> None:
        self.write(f"{name}: {done} {self.units.pop(name, 'done')} in {seconds:.1f} s"
                   + (f" ({note})" if note else ""))
