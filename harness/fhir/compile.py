"""StructureDefinition snapshot → the compact element table one validator walks.

A type's table maps each element's dotted JSON path (relative to the type root, choice
elements expanded to their JSON names such as ``valueQuantity``) to a row::

    [min, "*" | "1", type, choice base or None, content reference or None, extras]

``"*"`` means the element is a JSON array (its base definition repeats). ``extras`` is a dict
holding only what the element has: ``max`` (a finite maximum above one, or ``0``), ``cmin`` (the
minimum of the choice element a variant belongs to), ``bind`` ([strength, value set]),
``inv`` (constraint keys), ``targets`` (allowed reference / canonical target types), ``fixed``
and ``pattern`` values. Constraints are shared by key in a separate map with severity, human
text and FHIRPath expression. ``ele-1`` ("has a value or children") holds on every element in
FHIR and is checked by the walker on every element, so rows do not repeat it.

The same function compiles the R4 base definitions (``make tables`` commits the result) and any
profile a user supplies in a package directory, so both are validated by the same walker.
"""

from __future__ import annotations

from typing import Any

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SD_BASE = "http://hl7.org/fhir/StructureDefinition/"
UNIVERSAL = frozenset({"ele-1"})  # checked on every element by the walker


def type_code(t: dict[str, Any]) -> str:
    """The FHIR type name of a type entry (System.String and friends mapped to their FHIR type)."""
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return str(ext["valueUrl"])
        return code.rsplit(".", 1)[1].lower()
    return code


def regex_of(t: dict[str, Any]) -> str | None:
    for ext in t.get("extension", []):
        if ext.get("url") == REGEX_EXT:
            return str(ext["valueString"])
    return None


def upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def _targets(types: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for t in types:
        for url in t.get("targetProfile", []):
            name = url.split("|")[0].rsplit("/", 1)[-1] if url.startswith(SD_BASE) else url
            if name not in out:
                out.append(name)
    return out


def _fixed_and_pattern(el: dict[str, Any], extras: dict[str, Any]) -> None:
    for key, value in el.items():
        if key.startswith("fixed") and key != "fixed":
            extras["fixed"] = value
        elif key.startswith("pattern") and key != "pattern":
            extras["pattern"] = value


def _extras(el: dict[str, Any], types: list[dict[str, Any]], constraints: dict[str, list[Any]],
            owner: str) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    max_ = el.get("max", "*")
    if max_ not in ("*", "1"):
        extras["max"] = int(max_)
    binding = el.get("binding")
    if binding and binding.get("valueSet") and binding.get("strength") in ("required", "extensible", "preferred"):
        extras["bind"] = [binding["strength"], binding["valueSet"]]
    keys = []
    for c in el.get("constraint", []):
        key = c["key"]
        if key in UNIVERSAL or "expression" not in c:
            continue
        known = constraints.get(key)
        slot = key if known is None or known[2] == c["expression"] else f"{key}@{owner}"  # same key, other rule
        constraints[slot] = [c.get("severity", "error"), c.get("human", ""), c["expression"]]
        keys.append(slot)
    if keys:
        extras["inv"] = keys
    targets = _targets(types)
    if targets:
        extras["targets"] = targets
    _fixed_and_pattern(el, extras)
    return extras


def _row(min_: int, many: bool, code: str | None, choice: str | None, content_ref: str | None,
         extras: dict[str, Any]) -> list[Any]:
    row: list[Any] = [min_, "*" if many else "1", code, choice, content_ref]
    if extras:
        row.append(extras)
    return row


def compile_elements(sd: dict[str, Any], constraints: dict[str, list[Any]]) -> tuple[dict[str, list[Any]], list[str]]:
    """The element rows of one snapshot, and the keys of the constraints on its root element.

    Constraint definitions are added to ``constraints`` (shared between types).
    """
    root = sd["type"]
    owner = sd.get("id", root)
    rows: dict[str, list[Any]] = {}
    root_keys: list[str] = []
    for el in sd["snapshot"]["element"]:
        path: str = el["path"]
        if el.get("sliceName") and "." in path:
            continue  # slices refine their element; the base walker checks the element itself
        types = el.get("type", [])
        if "." not in path:
            root_keys = _extras(el, types, constraints, owner).get("inv", [])
            continue
        rel = path[len(root) + 1:]
        base_max = el.get("base", {}).get("max", el.get("max", "*"))
        many = base_max not in ("1", "0")
        if el.get("max") == "0" and base_max == "0":
            continue
        min_ = int(el.get("min", 0))
        extras = _extras(el, types, constraints, owner)
        if "contentReference" in el:
            ref = el["contentReference"].split("#", 1)[1]
            rows[rel] = _row(min_, many, None, None, ref[len(ref.split(".")[0]) + 1:], extras)
            continue
        if rel == "id" and sd["kind"] == "resource":
            rows[rel] = _row(min_, many, "id", None, None, extras)
            continue
        if rel.endswith("[x]"):
            base = rel[:-3]
            parent, _, leaf = base.rpartition(".")
            shared = {k: v for k, v in extras.items() if k != "targets"}
            if min_:
                shared["cmin"] = min_
            for t in types:
                code = type_code(t)
                key = f"{parent}.{leaf}{upper_first(code)}" if parent else leaf + upper_first(code)
                own = dict(shared)
                targets = _targets([t])
                if targets:
                    own["targets"] = targets
                rows[key] = _row(0, many, code, base, None, own)
            continue
        if not types:
            continue
        rows[rel] = _row(min_, many, type_code(types[0]), None, None, extras)
    return rows, root_keys


def compile_extension(sd: dict[str, Any]) -> dict[str, Any]:
    """What an extension definition allows: where it may be used, its value types, its parts.

    ``context``: the element types or paths it may sit on (``*`` where the definition uses a
    FHIRPath or extension context, which the walker does not judge); ``value``: the allowed
    value types (empty for a complex extension, whose ``value[x]`` is forbidden); ``parts``:
    for a complex extension, each part's URL with its minimum and maximum.
    """
    context = []
    for c in sd.get("context", []):
        context.append(c["expression"] if c.get("type") == "element" else "*")
    value: list[str] = []
    parts: dict[str, list[Any]] = {}
    slices: dict[str, list[Any]] = {}
    for el in sd["snapshot"]["element"]:
        path = el["path"]
        if path == "Extension.value[x]" and el.get("max") != "0":
            value = [type_code(t) for t in el.get("type", [])]
        elif path == "Extension.extension" and el.get("sliceName"):
            slices[el["id"]] = [int(el.get("min", 0)), el.get("max", "*")]
        elif path == "Extension.extension.url" and "fixedUri" in el:
            owner = el["id"].rsplit(".", 1)[0]
            if owner in slices:
                parts[el["fixedUri"]] = slices[owner]
    return {"context": context or ["*"], "value": value, "parts": parts}
