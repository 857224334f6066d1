"""Derive the compact R4 structure table from the official StructureDefinitions.

The harness must not need the FHIR definitions at run time, so this generator reads the R4
snapshots once and writes ``r4_structure.json`` beside it: for every resource and data type,
each element's JSON name, cardinality and type, with choice elements expanded to their
concrete JSON names, plus each primitive type's JSON kind and regex. Regenerate with
``make tables`` (``python -m harness.fhir.generate DEFINITIONS_DIR``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
JSON_KIND = {"boolean": "boolean", "integer": "integer", "positiveInt": "integer",
             "unsignedInt": "integer", "decimal": "number"}
OUTPUT = Path(__file__).with_name("r4_structure.json")


def _type_code(t: dict[str, Any]) -> str:
    code: str = t["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return str(ext["valueUrl"])
        return code.rsplit(".", 1)[1].lower()
    return code


def _regex(t: dict[str, Any]) -> str | None:
    for ext in t.get("extension", []):
        if ext.get("url") == REGEX_EXT:
            return str(ext["valueString"])
    return None


def _upper_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def _elements(sd: dict[str, Any]) -> dict[str, list[Any]]:
    """Element rows keyed by dotted JSON path relative to the type root.

    Row: [min, max, type, choice-base or None, content-reference or None].
    """
    root = sd["type"]
    rows: dict[str, list[Any]] = {}
    for el in sd["snapshot"]["element"]:
        path: str = el["path"]
        if "." not in path:
            continue
        rel = path[len(root) + 1:]
        max_ = "*" if el.get("max") == "*" or el.get("base", {}).get("max") == "*" else el["max"]
        if el.get("max") == "0" and el.get("base", {}).get("max") == "0":
            continue
        if "contentReference" in el:
            ref = el["contentReference"].lstrip("#")
            rows[rel] = [el.get("min", 0), max_, None, None, ref[len(ref.split(".")[0]) + 1:]]
            continue
        types = el.get("type", [])
        if rel == "id" and sd["kind"] == "resource":
            rows[rel] = [el.get("min", 0), max_, "id", None, None]
            continue
        if rel.endswith("[x]"):
            base = rel[:-3]
            parent, _, leaf = base.rpartition(".")
            for t in types:
                code = _type_code(t)
                name = leaf + _upper_first(code)
                key = f"{parent}.{name}" if parent else name
                rows[key] = [0, max_, code, base, None]
            continue
        if not types:
            continue
        rows[rel] = [el.get("min", 0), max_, _type_code(types[0]), None, None]
    return rows


def build(definitions: Path) -> dict[str, Any]:
    types: dict[str, Any] = {}
    primitives: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    digest = hashlib.sha256()
    for f in sorted(definitions.glob("StructureDefinition-*.json")):
        raw = f.read_bytes()
        sd = json.loads(raw)
        if sd.get("resourceType") != "StructureDefinition" or "snapshot" not in sd:
            continue
        kind, derivation = sd.get("kind"), sd.get("derivation")
        if kind not in {"resource", "complex-type", "primitive-type"}:
            continue
        if derivation == "constraint":
            if kind == "complex-type" and sd["type"] != "Extension" and sd["id"] != sd["type"]:
                aliases[sd["id"]] = sd["type"]
            continue
        digest.update(f.name.encode() + hashlib.sha256(raw).digest())
        name = sd["type"]
        if kind == "primitive-type":
            value = next(e for e in sd["snapshot"]["element"] if e["path"] == f"{name}.value")
            t = value["type"][0]
            primitives[name] = {"json": JSON_KIND.get(name, "string"), "regex": _regex(t)}
            continue
        types[name] = {"kind": kind, "abstract": bool(sd.get("abstract")),
                       "elements": _elements(sd)}
    return {
        "fhirVersion": "4.0.1",
        "generatedFrom": {"definitions": "hl7.fhir.r4 4.0.1 StructureDefinitions (snapshots)",
                          "sha256": digest.hexdigest()},
        "primitives": dict(sorted(primitives.items())),
        "aliases": dict(sorted(aliases.items())),
        "types": dict(sorted(types.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("definitions", type=Path, help="directory of R4 StructureDefinition JSON")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    table = build(args.definitions)
    args.output.write_text(json.dumps(table, separators=(",", ":"), sort_keys=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
