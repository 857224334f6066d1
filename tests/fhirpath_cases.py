"""The official FHIRPath R4 test suite as data: (name, input resource, expression, expected)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from harness.fhir.xml import resource_to_json
from tests.conftest import DATA

SUITE = DATA / "vectors" / "fhirpath" / "r4"


@dataclass(frozen=True)
class Case:
    name: str
    inputfile: str
    expression: str
    invalid: bool
    outputs: tuple[tuple[str, str], ...]
    predicate: bool


@cache
def load_input(name: str) -> Any:
    if not name:
        return {}
    json_path = SUITE / "input" / (Path(name).stem + ".json")
    if json_path.is_file():
        return orjson.loads(json_path.read_bytes())
    return resource_to_json(etree.parse(str(SUITE / "input" / name)).getroot())


def cases() -> list[Case]:
    tree = etree.parse(str(SUITE / "tests-fhir-r4.xml"))
    out = []
    for test in tree.iter("test"):
        expr = test.find("expression")
        assert expr is not None
        out.append(Case(
            name=test.get("name", ""), inputfile=test.get("inputfile", ""),
            expression=(expr.text or "").strip(), invalid=expr.get("invalid") is not None,
            outputs=tuple((o.get("type", ""), (o.text or "").strip()) for o in test.findall("output")),
            predicate=test.get("predicate") == "true",
        ))
    return out


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        try:
            return str(Decimal(str(value)).normalize())
        except InvalidOperation:
            return str(value)
    text = str(value)
    return text[1:] if text.startswith("@") else text


def _expected(type_name: str, text: str) -> str:
    if type_name in ("decimal", "integer"):
        return _norm(Decimal(text))
    if text.startswith("@"):
        text = text[1:]
    return text


def matches(case: Case, result: list[Any]) -> bool:
    if case.predicate:
        result = [bool(result)]
    if len(result) != len(case.outputs):
        return False
    for value, (type_name, text) in zip(result, case.outputs, strict=True):
        if isinstance(value, dict):
            return False
        got = _norm(value)
        want = _expected(type_name, text)
        if got != want and got.lstrip("T") != want.lstrip("T"):
            return False
    return True
