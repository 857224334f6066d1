"""FHIR R4 primitive formats: the spec's regex for each type plus the rules a regex cannot say.

Regexes come from the R4 definitions (via the generated table). On top of them: real calendar
dates (no 30 February), integer ranges (32-bit ``integer``, ``positiveInt`` ≥ 1,
``unsignedInt`` ≥ 0), a base64 check that runs in linear time (the spec's regex backtracks on
long values), and the 1 MB limit on strings. Each checker returns the problem in words, or
None.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
from collections.abc import Callable
from functools import cache

from harness.fhir.model import r4

MAX_STRING = 1024 * 1024
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_WS = re.compile(r"\s+")
# Types whose regex any non-blank string satisfies: checking it would only cost time.
_TRIVIAL = frozenset({"string", "markdown"})

Checker = Callable[[object], "str | None"]


# Types whose values name things, not people: a finding may quote them. Any other value (a date of
# birth, a name, a free-text note) may be personal data, so a finding says where it is, never what.
QUOTABLE = frozenset({"code", "id", "uri", "url", "canonical", "oid", "uuid"})
QUOTE_MAX = 80


def _calendar(value: str) -> str | None:
    """A value that matched the date/dateTime/instant regex but is not a real date."""
    date = value[:10]
    if len(date) == 10:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            return "the value has the form of a date but is not a real calendar date (not quoted: it may be " \
                   "personal data)"
    return None


def _invalid(type_name: str, text: str) -> str:
    if type_name not in QUOTABLE:
        return f"the value is not a valid {type_name} (not quoted: it may be personal data)"
    shown = text if len(text) <= QUOTE_MAX else text[:QUOTE_MAX] + "…"
    if type_name == "id":
        return f"'{shown}' is not a valid id (1–64 of A–Z, a–z, 0–9, '-' and '.')"
    return f"'{shown}' is not a valid {type_name}"


def _base64(value: str) -> str | None:
    compact = _WS.sub("", value)
    if len(compact) % 4 or not _B64.fullmatch(compact):
        return "the value is not valid base64"
    try:
        binascii.a2b_base64(compact.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        return "the value is not valid base64"
    return None


def _int_range(type_name: str, value: int) -> str | None:
    if not INT_MIN <= value <= INT_MAX:
        return f"{value} is outside the range of a FHIR {type_name} (32-bit)"
    if type_name == "positiveInt" and value < 1:
        return f"{value} is not a positiveInt (it must be 1 or more)"
    if type_name == "unsignedInt" and value < 0:
        return f"{value} is not an unsignedInt (it must be 0 or more)"
    return None


_MISS = object()
_MEMO_SIZE = 8192  # distinct short values remembered per type (codes, system URIs and ids repeat a lot)
_MEMO_LENGTH = 256  # longer values are checked every time, so the memo stays small


def _memo(check: Checker) -> Checker:
    """The same answers, remembered for short values: exports repeat codes, URIs and dates."""
    memo: dict[object, str | None] = {}

    def remembered(value: object) -> str | None:
        found = memo.get(value, _MISS)
        if found is _MISS:
            found = check(value)
            if len(value) <= _MEMO_LENGTH:  # type: ignore[arg-type]  # only strings reach here
                if len(memo) >= _MEMO_SIZE:
                    memo.clear()
                memo[value] = found
        return found  # type: ignore[return-value]
    return remembered


@cache
def checker(type_name: str) -> Checker:
    """The format check of one primitive type (the JSON kind is checked by the walker)."""
    found = _checker(type_name)
    return _memo(found) if r4().primitives[type_name]["json"] == "string" else found


def _checker(type_name: str) -> Checker:
    spec = r4().primitives[type_name]
    kind = spec["json"]
    if kind in ("integer",):
        return lambda value: _int_range(type_name, value)  # type: ignore[arg-type]
    if kind != "string":
        return lambda value: None
    if type_name == "base64Binary":
        return _base64  # type: ignore[return-value]
    regex = re.compile(spec["regex"]) if spec.get("regex") and type_name not in _TRIVIAL else None
    dated = type_name in ("date", "dateTime", "instant")

    def check(value: object) -> str | None:
        text: str = value  # type: ignore[assignment]
        if len(text) > MAX_STRING:
            return "value is longer than the 1 MB FHIR allows for a string"
        if regex is not None and not regex.fullmatch(text):
            return _invalid(type_name, text)
        if dated:
            return _calendar(text)
        return None
    return check
