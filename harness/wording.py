"""How values and failures are named in messages people read: JSON's words, never Python's."""

from __future__ import annotations

import re
from typing import Any

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_OBJECT = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*")
_SSL = re.compile(r"(certificate verify failed[^'\")]*|wrong version number|handshake failure|"
                  r"tlsv1 alert [a-z ]+|sslv3 alert [a-z ]+)", re.I)


def json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words ("a number", "an array"), for 'expected X, found Y'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a value JSON does not have"


def network_reason(exc: BaseException) -> str:
    """Why a connection failed, as the operating system or TLS said it, without library internals."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # the innermost OS error is the real reason
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        current = current.__cause__ or current.__context__
    text = str(exc)
    for pattern in (_SSL, _ERRNO):
        found = pattern.search(text)
        if found:
            return found.group(1).strip().rstrip(".")
    cleaned = _OBJECT.sub("", text)
    return cleaned[:200] or "no reason given"


def crash(exc: BaseException) -> str:
    """A failure inside care-assure itself: said as one, never as a finding about the supplier."""
    detail = str(exc).strip()[:200]
    return f"care-assure failed while checking ({detail or 'no detail'}); this is a harness fault, " \
           "not a finding about the supplier — please report it"
