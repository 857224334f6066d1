"""Streaming readers for one export file: NDJSON, FHIR JSON (Bundle or resource), FHIR XML.

Each reader takes a binary stream and a display name and yields ``Located`` resources and
``ReadError`` records; nothing is held beyond the current resource (or Bundle entry).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

import ijson
import orjson
from lxml import etree

from harness.fhir.xml import FHIR_NS, XmlConversionError, local_name, resource_to_json
from harness.results import Location
from harness.targets.base import Located, ReadError
from harness.wording import json_kind

Item = Located | ReadError


def _resource_error(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"expected a JSON object (a FHIR resource), found {json_kind(value)}"
    rtype = value.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return "object has no 'resourceType', so it is not a FHIR resource"
    return None


MAX_LINE_BYTES = 64 * 1024 * 1024  # one NDJSON line (one resource)


def _lines(stream: IO[bytes], first_line: int = 1) -> Iterator[tuple[bytes | None, int]]:
    """Each line with its number; a line longer than the bound is skipped (None), never held whole."""
    lineno = first_line - 1
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # drop the rest of the line, a piece at a time
                raw = stream.readline(MAX_LINE_BYTES)
            yield None, lineno
            continue
        yield raw, lineno


def read_ndjson(stream: IO[bytes], name: str, first_line: int = 1) -> Iterator[Item]:
    """One resource per line; blank lines are allowed and skipped (``first_line``: a shard's first line)."""
    for raw, lineno in _lines(stream, first_line):
        item = ndjson_line(raw, name, lineno)
        if item is not None:
            yield item


def ndjson_line(raw: bytes | None, name: str, lineno: int) -> Item | None:
    """One NDJSON line as a resource or a read error (None for a blank line; ``raw`` None: too long)."""
    if raw is None:
        return ReadError(Location(name, lineno), f"line is longer than {MAX_LINE_BYTES:,} bytes: not read")
    if not raw or raw.isspace():  # blank (isspace, unlike strip, copies nothing)
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return ReadError(Location(name, lineno), f"line is not valid JSON: {_parse_problem(exc)}")
    problem = _resource_error(value)
    if problem:
        return ReadError(Location(name, lineno), problem)
    return Located(value, Location(name, lineno), None, raw)


MAX_DEPTH = 128  # nesting of objects and arrays in one resource (FHIR needs far fewer)
MAX_ENTRIES = 10_000_000  # entries read from one Bundle
MAX_STRING_CHARS = 16 * 1024 * 1024  # one string value (FHIR itself allows 1 MB; attachments are base64)
MAX_SINGLE_BYTES = 512 * 1024 * 1024  # a JSON file that is one resource, read whole
_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})


def _top_level_type(stream: IO[bytes]) -> str | None:
    """The document's top-level ``type`` (a Bundle's type), wherever it is; the stream is rewound."""
    if not (hasattr(stream, "seekable") and stream.seekable()):
        return None
    start = stream.tell()
    found: str | None = None
    depth, key = 0, None
    try:
        for event, value in ijson.basic_parse(stream):
            if event in _OPEN:
                depth += 1
            elif event in _CLOSE:
                depth -= 1
            elif depth == 1 and event == "map_key":
                key = value
            elif depth == 1 and key == "type" and event == "string":
                found = value
                break
            if depth > MAX_DEPTH:
                break
    except ijson.common.IncompleteJSONError:
        pass  # the main pass reports the syntax error with its position
    stream.seek(start)
    return found


def _parse_problem(exc: Exception) -> str:
    """The parser's complaint without the input text it quotes (which may be patient data)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else "the parser gave no reason"


def read_json(stream: IO[bytes], name: str) -> Iterator[Item]:
    """A FHIR JSON document: a Bundle (streamed entry by entry) or one resource.

    Nesting is bounded (an entry deeper than ``MAX_DEPTH`` is refused with its pointer, and the
    next entry is read); an entry that is not an object is a finding, never dropped. A number
    too large for the fast parser is read again by ijson's pure-Python backend, so the rest of
    the Bundle is not lost.
    """
    done = -1
    for backend in (None, "python"):
        retry = False
        for item in _read_json(stream, name, backend, done):
            if isinstance(item, _Overflow):
                if not (hasattr(stream, "seekable") and stream.seekable()):
                    yield ReadError(Location(name, pointer=item.pointer), f"file is not valid JSON: {item.problem}")
                    return
                done, retry = item.done, True
                stream.seek(0)
                break
            yield item
        if not retry:
            return


def _number(value: Decimal) -> int | float | None:
    """A number from the pure-Python parser as JSON readers give it; None if no float can hold it."""
    if value == value.to_integral_value() and abs(value) < 2**63:
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class _Overflow:
    """The fast parser met a number it cannot hold, after ``done`` entries were given."""

    done: int
    pointer: str | None
    problem: str


def _read_json(stream: IO[bytes], name: str, backend: str | None, skip: int) -> Iterator[Item | _Overflow]:
    parse = ijson.get_backend(backend).basic_parse if backend else ijson.basic_parse
    bundle_type = _top_level_type(stream)
    depth = 0
    key: str | None = None
    in_entries = False
    index = -1
    top_type: str | None = None
    inside = 0  # depth within the current entry (0: not in one)
    builder: Any = None
    refused: str | None = None
    try:
        for event, raw_value in parse(stream, use_float=backend is None):
            value = raw_value
            if event == "string" and len(raw_value) > MAX_STRING_CHARS and inside and builder is not None:
                builder, refused = None, f"a string in this entry is longer than {MAX_STRING_CHARS:,} characters"
            if event == "number" and isinstance(raw_value, Decimal):
                value = _number(raw_value)
                if value is None and inside and builder is not None:
                    builder, refused = None, "a number in this entry is too large for FHIR (beyond 1e308)"
            if inside:
                inside += 1 if event in _OPEN else -1 if event in _CLOSE else 0
                if builder is not None:
                    if inside > MAX_DEPTH:
                        builder, refused = None, f"Bundle entry nests deeper than {MAX_DEPTH} levels"
                    else:
                        builder.event(event, value)
                if inside == 0:
                    if index <= skip:
                        pass  # given already, before the fast parser gave up on a number
                    elif builder is not None:
                        yield from _entry(builder.value, name, index, bundle_type)
                    else:
                        yield ReadError(Location(name, pointer=f"/entry/{index}"), refused or "unreadable entry")
                    builder, refused = None, None
                continue
            if in_entries and depth == 2 and event not in _CLOSE:
                index += 1
                if index >= MAX_ENTRIES:
                    yield ReadError(Location(name), f"the Bundle has more than {MAX_ENTRIES:,} entries; "
                                                    "the rest are not read")
                    return
                if event == "start_map":
                    builder, inside = ijson.ObjectBuilder(), 1
                    builder.event(event, value)
                elif event == "start_array":
                    builder, inside, refused = None, 1, "Bundle entry is an array, not an object"
                elif index > skip:
                    yield ReadError(Location(name, pointer=f"/entry/{index}"),
                                    f"Bundle entry is a {event}, not an object")
                continue
            if event in _OPEN:
                depth += 1
                if depth == 2 and key == "entry" and event == "start_array":
                    in_entries = True
                if depth > MAX_DEPTH:
                    yield ReadError(Location(name), f"the document nests deeper than {MAX_DEPTH} levels")
                    return
            elif event in _CLOSE:
                depth -= 1
                if depth == 1:
                    in_entries = False
                if depth == 0:
                    break
            elif depth == 1 and event == "map_key":
                key = value
            elif depth == 1 and key == "resourceType" and event == "string":
                top_type = value
    except ijson.common.JSONError as exc:
        problem = _parse_problem(exc)
        pointer = f"/entry/{index}" if inside else None
        if "overflow" in problem and backend is None:
            yield _Overflow(index - 1 if inside else index, pointer, problem)
            return
        where = f" in entry {index}" if inside else ""
        yield ReadError(Location(name, pointer=pointer), f"file is not valid JSON{where}: {problem}")
        return
    if index >= 0 and top_type not in (None, "Bundle"):
        yield ReadError(Location(name), f"'entry' found in a {top_type}, which is not a Bundle")
    if index < 0:
        yield from _single(stream, name, top_type)


def _single(stream: IO[bytes], name: str, top_type: str | None) -> Iterator[Item]:
    """A JSON file that is not a Bundle with entries: re-read it whole (single resource)."""
    if not hasattr(stream, "seek"):
        yield ReadError(Location(name), "cannot re-read a non-seekable JSON stream")
        return
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    if size > MAX_SINGLE_BYTES:
        yield ReadError(Location(name), f"a single JSON resource of {size:,} bytes is larger than the "
                                        f"{MAX_SINGLE_BYTES:,} read whole; export it as NDJSON")
        return
    try:
        value = orjson.loads(stream.read())
    except orjson.JSONDecodeError as exc:
        yield ReadError(Location(name, exc.lineno), f"file is not valid JSON: {exc}")
        return
    problem = _resource_error(value)
    if problem:
        yield ReadError(Location(name, 1), problem)
        return
    if value["resourceType"] == "Bundle":
        return  # an empty Bundle: nothing to test
    yield Located(value, Location(name, 1))


def _entry(entry: Any, name: str, index: int, bundle_type: str | None) -> Iterator[Item]:
    pointer = f"/entry/{index}/resource"
    if isinstance(entry, dict) and "resource" not in entry and ("request" in entry or "response" in entry):
        return  # a batch or transaction entry that only carries a request (a delete, say) is valid
    if not isinstance(entry, dict) or "resource" not in entry:
        yield ReadError(Location(name, pointer=f"/entry/{index}"), "Bundle entry has no resource")
        return
    resource = entry["resource"]
    problem = _resource_error(resource)
    if problem:
        yield ReadError(Location(name, pointer=pointer), problem)
        return
    full_url = entry.get("fullUrl")
    yield Located(resource, Location(name, pointer=pointer), full_url if isinstance(full_url, str) else None,
                  entry={k: v for k, v in entry.items() if k != "resource"}, bundle_type=bundle_type)


_BUNDLE = "{" + FHIR_NS + "}Bundle"
_ENTRY = "{" + FHIR_NS + "}entry"
_RESOURCE = "{" + FHIR_NS + "}resource"
_FULLURL = "{" + FHIR_NS + "}fullUrl"
_TYPE = "{" + FHIR_NS + "}type"
_REQUEST = "{" + FHIR_NS + "}request"


def read_xml(stream: IO[bytes], name: str) -> Iterator[Item]:
    """A FHIR XML document: a Bundle (streamed entry by entry) or one resource."""
    context = etree.iterparse(stream, events=("start", "end"), remove_blank_text=True,
                              resolve_entities=False, no_network=True, huge_tree=False)
    depth = 0
    root_is_bundle = False
    bundle_type: str | None = None
    index = -1
    try:
        for event, elem in context:
            if event == "start":
                depth += 1
                if depth == 1:
                    root_is_bundle = elem.tag == _BUNDLE
                continue
            depth -= 1
            if root_is_bundle and depth == 1 and elem.tag == _TYPE:
                bundle_type = elem.get("value")
            if root_is_bundle and depth == 1 and elem.tag == _ENTRY:
                index += 1
                yield from _xml_entry(elem, name, index, bundle_type)
                elem.clear()
                while elem.getprevious() is not None:
                    del elem.getparent()[0]
            elif depth == 0 and not root_is_bundle:
                yield _xml_resource(elem, name, None, None)
    except etree.XMLSyntaxError as exc:
        yield ReadError(Location(name, exc.lineno), f"file is not well-formed XML: {exc.msg}")


def _xml_entry(entry: Any, name: str, index: int, bundle_type: str | None) -> Iterator[Item]:
    holder = entry.find(_RESOURCE)
    pointer = f"/entry/{index}/resource"
    if holder is None and entry.find(_REQUEST) is not None:
        return  # a batch or transaction entry that only carries a request is valid
    inner = [c for c in holder if isinstance(c.tag, str)] if holder is not None else []
    if len(inner) != 1:
        yield ReadError(Location(name, entry.sourceline, f"/entry/{index}"),
                        "Bundle entry must hold exactly one resource")
        return
    full = entry.find(_FULLURL)
    full_url = full.get("value") if full is not None else None
    meta = {"fullUrl": full_url} if full_url is not None else {}
    yield _xml_resource(inner[0], name, pointer, full_url, meta, bundle_type)


def _xml_resource(elem: Any, name: str, pointer: str | None, full_url: str | None,
                  entry: dict[str, Any] | None = None, bundle_type: str | None = None) -> Item:
    location = Location(name, elem.sourceline, pointer)
    try:
        local_name(elem)
        return Located(resource_to_json(elem), location, full_url, entry=entry, bundle_type=bundle_type)
    except XmlConversionError as exc:
        return ReadError(Location(name, exc.line or elem.sourceline, pointer), str(exc))
