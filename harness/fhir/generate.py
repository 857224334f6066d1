"""Derive the compact R4 tables from the official definitions and expansions.

The harness must not need the FHIR definitions at run time, so this generator reads the R4
snapshots once and writes ``r4_structure.json`` beside it: for every resource and data type its
element rows (JSON name, cardinality, type, binding, constraint keys, reference targets; the
row format is described in ``compile.py``), the shared constraint definitions, and each
primitive type's JSON kind and regex. It also writes ``r4_valuesets.json``: the codes of every
value set a base element binds with strength required, extensible or preferred, from the
stored R4 expansions. Regenerate both with ``make tables``
(``python -m harness.fhir.generate DEFINITIONS_DIR``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from harness.fhir.compile import compile_elements, compile_extension, regex_of
from harness.fhir.model import TABLE_PATH as OUTPUT
from harness.fhir.model import VALUESETS_PATH as VALUESETS_OUTPUT
from harness.terminology import NotExpandable, Terminology

JSON_KIND = {"boolean": "boolean", "integer": "integer", "positiveInt": "integer",
             "unsignedInt": "integer", "decimal": "number"}
MAX_CODES = 2000  # larger value sets (languages, all codes of a big system) are left to a package


def build(definitions: Path) -> dict[str, Any]:
    types: dict[str, Any] = {}
    primitives: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    constraints: dict[str, list[Any]] = {}
    extensions: dict[str, Any] = {}
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
            elif sd["type"] == "Extension" and isinstance(sd.get("url"), str):
                digest.update(f.name.encode() + hashlib.sha256(raw).digest())
                extensions[sd["url"]] = compile_extension(sd)
            continue
        digest.update(f.name.encode() + hashlib.sha256(raw).digest())
        name = sd["type"]
        if kind == "primitive-type":
            value = next(e for e in sd["snapshot"]["element"] if e["path"] == f"{name}.value")
            t = value["type"][0]
            primitives[name] = {"json": JSON_KIND.get(name, "string"), "regex": regex_of(t)}
            continue
        elements, root_keys = compile_elements(sd, constraints)
        entry: dict[str, Any] = {"kind": kind, "abstract": bool(sd.get("abstract")), "elements": elements}
        if root_keys:
            entry["inv"] = root_keys
        types[name] = entry
    return {
        "fhirVersion": "4.0.1",
        "generatedFrom": {"definitions": "hl7.fhir.r4 4.0.1 StructureDefinitions (snapshots)",
                          "sha256": digest.hexdigest()},
        "primitives": dict(sorted(primitives.items())),
        "aliases": dict(sorted(aliases.items())),
        "constraints": dict(sorted(constraints.items())),
        "extensions": dict(sorted(extensions.items())),
        "types": dict(sorted(types.items())),
    }


def _expansions(directory: Path) -> Terminology:
    """Every ValueSet in the expansions package (file names need not end in .json)."""
    term = Terminology()
    for f in sorted(directory.iterdir()):
        if not f.is_file():
            continue
        try:
            resource = json.loads(f.read_bytes())
        except ValueError:
            continue
        if isinstance(resource, dict) and resource.get("resourceType") in ("ValueSet", "CodeSystem"):
            term.add(resource)
    return term


def build_valuesets(table: dict[str, Any], expansions: Path) -> dict[str, Any]:
    """The codes of every value set a base element binds (required, extensible or preferred).

    A value set that cannot be expanded offline is kept with the reason, so a binding to it is
    reported as not evaluated instead of passing.
    """
    term = _expansions(expansions)
    urls = sorted({row[5]["bind"][1].split("|")[0] for t in table["types"].values()
                   for row in t["elements"].values() if len(row) > 5 and "bind" in row[5]})
    out: dict[str, Any] = {}
    for url in urls:
        vs = term.value_sets.get(url, {})
        name = vs.get("name") or url.rsplit("/", 1)[-1]
        try:
            codes = term.expand(url)
        except NotExpandable as exc:
            out[url] = {"name": name, "unexpandable": str(exc)}
            continue
        if not codes:
            out[url] = {"name": name, "unexpandable": "the stored expansion holds no codes"}
            continue
        if len(codes) > MAX_CODES:
            out[url] = {"name": name, "unexpandable": f"too large to ship ({len(codes)} codes)"}
            continue
        by_system: dict[str, list[str]] = {}
        for system, code in sorted(codes):
            by_system.setdefault(system, []).append(code)
        out[url] = {"name": name, "codes": by_system}
    return {"fhirVersion": "4.0.1",
            "generatedFrom": "hl7.fhir.r4.expansions 4.0.1 (stored expansions)",
            "valueSets": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("definitions", type=Path, help="directory of R4 StructureDefinition JSON")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--expansions", type=Path, default=None,
                        help="directory of R4 ValueSet expansions (default: beside the definitions)")
    args = parser.parse_args(argv)
    table = build(args.definitions)
    args.output.write_text(json.dumps(table, separators=(",", ":"), sort_keys=False) + "\n")
    expansions = args.expansions or args.definitions.parent / "expansions"
    valuesets = build_valuesets(table, expansions)
    VALUESETS_OUTPUT.write_text(json.dumps(valuesets, separators=(",", ":"), sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
