"""What every target yields: a resource with its location, or a read error with its location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.results import Location


@dataclass(slots=True)
class Located:
    """One resource and where it came from."""

    resource: dict[str, Any]
    location: Location
    full_url: str | None = None
    raw: bytes | None = None  # the resource's JSON text, when the reader has it (NDJSON)
    entry: dict[str, Any] | None = None  # for a Bundle entry: the entry without its resource
    bundle_type: str | None = None  # for a Bundle entry: the Bundle's type, when read before the entry
    columns: dict[str, str] | None = None  # for a CSV row: top-level element -> the column it came from


@dataclass(frozen=True, slots=True)
class ReadError:
    """A part of the target that could not be read; the run goes on without it."""

    location: Location
    message: str
    fatal: bool = False  # nothing more of the target can be read (unreachable, authentication refused)
