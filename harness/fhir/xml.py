"""FHIR XML to FHIR JSON, driven by the R4 structure table.

XML does not say which elements repeat or which primitives are numbers or booleans; the
structure table does. The conversion follows the FHIR JSON rules: repeating elements become
arrays, primitive ``id``/``extension`` go to the ``_name`` companion, the narrative ``div``
stays XHTML text, and a resource inside an element carries its ``resourceType``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from lxml import etree

from harness.fhir.model import ElementInfo, R4Model, r4

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_F = "{" + FHIR_NS + "}"


class XmlConversionError(ValueError):
    """An XML element that R4 does not allow where it stands."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def line_of(elem: Any) -> int | None:
    line = getattr(elem, "sourceline", None)
    return line if isinstance(line, int) else None


def local_name(elem: Any) -> str:
    tag: Any = elem.tag
    if not isinstance(tag, str):
        return ""
    if not tag.startswith(_F):
        raise XmlConversionError(f"element <{tag}> is not in the FHIR namespace", line_of(elem))
    return tag[len(_F):]


def _primitive(model: R4Model, type_name: str, raw: str) -> Any:
    kind = model.primitives.get(type_name, {}).get("json", "string")
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise ValueError(f"'{raw}' is not a boolean")
        return raw == "true"
    if kind == "integer":
        if not _INTEGER.fullmatch(raw):
            raise ValueError(f"'{raw[:40]}' is not a valid {type_name}")
        return int(raw)
    if kind == "number":
        return _decimal(raw)
    return raw


_INTEGER = re.compile(r"-?[0-9]{1,12}")  # 32-bit and then some; the validator checks the range
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,99})(\.[0-9]{1,100})?([eE][+-]?[0-9]{1,3})?")


def _decimal(raw: str) -> int | float:
    """A FHIR decimal from XML text, refusing what is not one (``abc``, ``Infinity``, ``1e999999999``)."""
    if not _DECIMAL.fullmatch(raw):
        raise ValueError(f"'{raw[:40]}' is not a valid decimal")
    if "." not in raw and "e" not in raw.lower():
        return int(raw)
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"'{raw[:40]}' is outside the range of a decimal")
    number = Decimal(raw)
    return int(number) if number == number.to_integral_value() and "." not in raw and abs(value) < 1e18 else value


def resource_to_json(elem: Any, model: R4Model | None = None) -> dict[str, Any]:
    """Convert one resource element (``<Patient xmlns="http://hl7.org/fhir">``) to JSON."""
    model = model or r4()
    rtype = local_name(elem)
    if rtype not in model.resource_types:
        raise XmlConversionError(f"<{rtype}> is not an R4 resource type", line_of(elem))
    out: dict[str, Any] = {"resourceType": rtype}
    _fill(model, elem, (rtype, ""), out)
    return out


def _fill(model: R4Model, elem: Any, state: tuple[str, str], out: dict[str, Any]) -> None:
    children = model.children(state)
    for attr in ("id", "url"):
        if attr in elem.attrib and attr in children:
            out[attr] = elem.attrib[attr]
    for child in elem:
        tag: Any = child.tag
        if not isinstance(tag, str):
            continue  # comments and processing instructions
        name = "div" if child.tag == "{" + XHTML_NS + "}div" else local_name(child)
        info = children.get(name)
        if info is None:
            raise XmlConversionError(
                f"element '{name}' is not allowed in {_where(state)}", line_of(child))
        _add(model, child, info, out)


def _where(state: tuple[str, str]) -> str:
    return f"{state[0]}.{state[1]}" if state[1] else state[0]


def _add(model: R4Model, child: Any, info: ElementInfo, out: dict[str, Any]) -> None:
    value: Any
    extra: dict[str, Any] | None = None
    if info.type == "xhtml":
        value = etree.tostring(child, encoding="unicode", with_tail=False)
    elif model.is_primitive(info.type):
        raw = child.attrib.get("value")
        try:
            value = None if raw is None else _primitive(model, info.type, raw)
        except ValueError as exc:
            raise XmlConversionError(f"{info.name}: {exc}", line_of(child)) from None
        extra = {}
        _fill(model, child, (info.type, ""), extra)
        extra.pop("url", None)
        if not extra:
            extra = None
    elif info.type == "Resource":
        inner = [c for c in child if isinstance(c.tag, str)]
        if len(inner) != 1:
            raise XmlConversionError(f"{info.name} must hold exactly one resource", line_of(child))
        value = resource_to_json(inner[0], model)
    else:
        value = {}
        _fill(model, child, info.state, value)
    name = info.name
    if info.many:
        values = out.setdefault(name, []) if value is not None or extra is None else None
        if value is None and extra is not None:
            values = out.setdefault(name, [])
        assert values is not None
        values.append(value)
        if extra is not None or f"_{name}" in out:
            companions = out.setdefault(f"_{name}", [None] * (len(values) - 1))
            companions.append(extra)
        return
    if name in out or f"_{name}" in out:
        raise XmlConversionError(f"element '{name}' may appear only once", line_of(child))
    if value is not None:
        out[name] = value
    if extra is not None:
        out[f"_{name}"] = extra
