"""CSV exports read through a data dictionary: each row becomes the FHIR resource the same rules read.

A mapping (YAML, ``harness/targets/csv_maps/csv-map.schema.json``) names the resource type, how
its id is made, and for each column the FHIR element the cell goes to (``set``), or the array a
template is appended to (``append``), with the cell's type (date, dateTime, code) and the
supplier's codes. The shipped mappings (a resident list, a MAR chart) are chosen by header;
``--csv-map FILE`` adds a supplier's own, tried first.

Encoding (UTF-8, UTF-8 with BOM, Windows-1252) and delimiter (``,`` ``;`` tab ``|``) are detected
from the start of the file unless the mapping gives them. Every row that cannot be read and every
cell that cannot be mapped is a finding naming file, row and column; the rest of the file is read.
Memory stays constant: rows are read one at a time.
"""

from __future__ import annotations

import codecs
import copy
import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from harness.errors import ConfigurationError, Problem
from harness.results import Location
from harness.schemas import schema_problems
from harness.targets.base import Located, ReadError
from harness.yamlsource import load_yaml

MAPS_DIR = Path(__file__).with_name("csv_maps")
SCHEMA = MAPS_DIR / "csv-map.schema.json"
SNIFF_BYTES = 64 * 1024
MAX_FIELD = 1024 * 1024  # one cell; a larger one is a finding, not a memory problem
DELIMITERS = ",;\t|"
_ID_CHARS = re.compile(r"[^A-Za-z0-9.-]+")
_STEP = re.compile(r"([A-Za-z]+)(?:\[(\d)\])?")
_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DMY_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")

Item = Located | ReadError


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.strip().lower())


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    names: frozenset[str]  # the header spellings it answers to (normalised)
    required: bool = False
    set: str | None = None
    append: str | None = None
    template: Any = None
    kind: str = "string"
    timezone: str = "Europe/London"
    codes: dict[str, str] = field(default_factory=dict)
    split: str | None = None
    ignore: bool = False

    @property
    def element(self) -> str:
        """The resource's top-level element this column fills (for naming the column in findings)."""
        found = _STEP.match(self.set or self.append or "")
        return found[1] if found else ""


@dataclass(frozen=True, slots=True)
class CsvMap:
    id: str
    title: str
    resource: str
    columns: tuple[Column, ...]
    id_column: str | None = None
    id_prefix: str = ""
    fixed: dict[str, Any] = field(default_factory=dict)
    encoding: str | None = None
    delimiter: str | None = None
    source: str = ""

    def matches(self, header: list[str]) -> bool:
        have = {_norm(h) for h in header}
        return all(c.names & have for c in self.columns if c.required)


def load_map(path: Path, display: str | None = None) -> CsvMap:
    """A mapping file, checked against its schema (problems name the file and line)."""
    doc = load_yaml(path, display)
    problems = schema_problems(doc, SCHEMA)
    if problems:
        raise ConfigurationError(problems)
    data = doc.data
    columns = []
    for i, c in enumerate(data["columns"]):
        tz = c.get("timezone", "Europe/London")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(Problem(f"unknown time zone '{tz}'", doc.path,
                                             doc.line_of(("columns", i, "timezone")))) from None
        columns.append(Column(
            name=c["column"], names=frozenset(_norm(n) for n in [c["column"], *c.get("aliases", [])]),
            required=c.get("required", False), set=c.get("set"), append=c.get("append"), template=c.get("template"),
            kind=c.get("type", "string"), timezone=tz, codes={_norm(k): v for k, v in c.get("codes", {}).items()},
            split=c.get("split"), ignore=c.get("ignore", False)))
    ident = data["id"]
    return CsvMap(id=data["mapping"], title=data["title"], resource=data["resource"], columns=tuple(columns),
                  id_column=ident.get("column"), id_prefix=ident.get("prefix", ""), fixed=data.get("fixed", {}),
                  encoding=data.get("encoding"), delimiter=data.get("delimiter"), source=doc.path)


def shipped_maps() -> list[CsvMap]:
    return [load_map(p, f"csv_maps/{p.name}") for p in sorted(MAPS_DIR.glob("*.yaml"))]


def maps_for(user: list[Path] | tuple[Path, ...] = ()) -> list[CsvMap]:
    """The supplier's mappings first (in the order given), then the shipped ones."""
    return [load_map(p) for p in user] + shipped_maps()


# -- reading -----------------------------------------------------------------------------------------------

def _encoding(head: bytes, given: str | None) -> str:
    if given:
        return given
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return "cp1252"
    return "utf-8"


def _delimiter(sample: str, given: str | None) -> str:
    if given:
        return given
    first = sample.splitlines()[0] if sample else ""
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(stream: IO[bytes], name: str, maps: list[CsvMap] | None = None) -> Iterator[Item]:
    """Rows of a CSV export, as resources through the first mapping whose required columns the header has."""
    maps = shipped_maps() if maps is None else maps
    head = stream.read(SNIFF_BYTES)
    stream = io.BufferedReader(_Prefixed(head, stream))  # zip members cannot seek back
    for mapping in [*maps, None]:
        if mapping is None:
            break
        encoding = _encoding(head, mapping.encoding)
        text = head.decode(encoding, "replace")
        header = next(csv.reader(io.StringIO(text), delimiter=_delimiter(text, mapping.delimiter)), [])
        if mapping.matches(header):
            yield from _rows(stream, name, mapping, encoding, _delimiter(text, mapping.delimiter))
            return
    text = head.decode(_encoding(head, None), "replace")
    header = next(csv.reader(io.StringIO(text), delimiter=_delimiter(text, None)), [])
    known = ", ".join(m.id for m in maps)
    yield ReadError(Location(name, 1), f"no CSV mapping fits this header ({len(header)} columns); known mappings: "
                                       f"{known}; describe the file with --csv-map FILE")


class _Prefixed(io.RawIOBase):
    """The bytes already read to sniff the file, then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _rows(stream: IO[bytes], name: str, mapping: CsvMap, encoding: str, delimiter: str) -> Iterator[Item]:
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
    reader = csv.reader(text, delimiter=delimiter)
    csv.field_size_limit(MAX_FIELD)
    try:
        header = next(reader)
    except (csv.Error, UnicodeDecodeError) as exc:
        yield ReadError(Location(name, 1), f"the header row cannot be read: {_csv_problem(exc, encoding)}")
        return
    by_name = {c_name: c for c in mapping.columns for c_name in c.names}
    columns = [by_name.get(_norm(h)) for h in header]
    for h, c in zip(header, columns, strict=True):
        if c is None and h.strip():
            yield ReadError(Location(name, 1, column=h), f"column '{h}' is not in the {mapping.id} mapping; its "
                                                         "values were not read")
    row_number = 1
    while True:
        start_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            yield ReadError(Location(name, start_line), f"row cannot be read: {_csv_problem(exc, encoding)}")
            if isinstance(exc, UnicodeDecodeError):
                return  # the decoder cannot resynchronise: the rest of the file is not read
            continue
        if not any(c.strip() for c in cells):
            continue
        row_number += 1
        if len(cells) != len(header):
            yield ReadError(Location(name, start_line), f"row has {len(cells)} fields, the header has {len(header)}; "
                                                        "not read (a stray delimiter or quote?)")
            continue
        yield from _resource(mapping, name, start_line, row_number, header, columns, cells)


def _csv_problem(exc: Exception, encoding: str) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"bytes that are not {encoding} (detected from the start of the file; set encoding: in the mapping)"
    return str(exc)  # the csv module's messages quote no data


def _resource(mapping: CsvMap, name: str, line: int, row: int, header: list[str], columns: list[Column | None],
              cells: list[str]) -> Iterator[Item]:
    resource: dict[str, Any] = {"resourceType": mapping.resource, **copy.deepcopy(mapping.fixed)}
    rid = None
    column_of: dict[str, str] = {}
    for head, column, cell in zip(header, columns, cells, strict=True):
        value = cell.strip()
        if column is None:
            continue
        if mapping.id_column and _norm(mapping.id_column) in column.names and value:
            rid = mapping.id_prefix + _ID_CHARS.sub("-", value).strip("-")[:64 - len(mapping.id_prefix)]
        if column.ignore or not value:
            continue
        values = [v.strip() for v in value.split(column.split)] if column.split else [value]
        converted = []
        for v in values:
            got, problem = _convert(column, v)
            if problem:
                yield ReadError(Location(name, line, column=head), f"{problem}; the cell was not mapped")
            elif got is not None:
                converted.append(got)
        if not converted:
            continue
        column_of.setdefault(column.element, head)
        for v in converted:  # and by value, for checks whose path does not name the element
            column_of.setdefault(f"={v}", head)
        _place(resource, column, converted)
    resource["id"] = rid or f"{mapping.resource.lower()}-row-{row}"
    yield Located(resource, Location(name, line), columns=column_of)


def _convert(column: Column, value: str) -> tuple[Any, str | None]:
    """The cell as a FHIR value, or why it cannot be one (never quoting the cell: it may be personal data)."""
    if column.kind == "code" and column.codes:
        return column.codes.get(_norm(value), value), None  # an unknown code goes through: its binding judges it
    if column.kind == "date":
        m = _DMY.fullmatch(value)
        if m:
            day, month, year = (int(x) for x in m.groups())
            try:
                return dt.date(year, month, day).isoformat(), None
            except ValueError:
                return None, "not a real date (day/month/year)"
        return value, None  # ISO and partial dates go through as given: the date rules judge them
    if column.kind == "dateTime":
        m = _DMY_TIME.fullmatch(value)
        if m:
            day, month, year, hour, minute = (int(x) for x in m.groups()[:5])
            second = int(m.group(6) or 0)
            try:
                moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(column.timezone))
            except ValueError:
                return None, "not a real date and time (day/month/year hour:minute)"
            return moment.isoformat(), None
        if len(value) <= 10:
            return value, None  # a date alone (or a partial one) is a valid dateTime, or its rule says why not
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value, None  # not ours to judge: the dateTime format rule reports it
        if moment.tzinfo is None:  # a local time: in the mapping's time zone, as on the care home's wall
            moment = moment.replace(tzinfo=ZoneInfo(column.timezone))
        return moment.isoformat(), None
    if column.kind == "boolean":
        lowered = value.lower()
        if lowered in ("true", "yes", "y", "1"):
            return True, None
        if lowered in ("false", "no", "n", "0"):
            return False, None
        return None, "not yes/no (true/false)"
    return value, None


def _fill(template: Any, value: Any) -> Any:
    if isinstance(template, dict):
        return {k: _fill(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, value) for v in template]
    if template == "{}":
        return value
    if isinstance(template, str) and "{}" in template:
        return template.replace("{}", str(value))
    return template


def _place(resource: dict[str, Any], column: Column, values: list[Any]) -> None:
    if column.append:
        items = _at(resource, column.append, [])
        items.extend(_fill(column.template, v) for v in values)
        return
    assert column.set is not None
    filled = [_fill(column.template, v) for v in values] if column.template is not None else values
    holder, key = _parent(resource, column.set)
    holder[key] = filled if column.split else filled[0]


def _parent(resource: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The object that holds the last step of ``path`` (objects and array items made on the way)."""
    node: dict[str, Any] = resource
    steps = path.split(".")
    for step in steps[:-1]:
        m = _STEP.fullmatch(step)
        assert m is not None
        if m[2] is None:
            node = node.setdefault(m[1], {})
        else:
            items = node.setdefault(m[1], [])
            while len(items) <= int(m[2]):
                items.append({})
            node = items[int(m[2])]
    return node, steps[-1].split("[")[0]


def _at(resource: dict[str, Any], path: str, default: Any) -> Any:
    holder, key = _parent(resource, path)
    return holder.setdefault(key, default)
