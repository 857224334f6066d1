"""R4 core extensions, checked against their definitions: where they may be used, what value they take.

The extension table (``r4_structure.json``, from the R4 extension StructureDefinitions) gives
each extension's contexts, value types and required parts. An extension URL the table does not
know is left to the profile or package that defines it; a versioned URL (``…|4.0.0``) is refused.
``where`` holds the FHIR paths of the element that carries the extension (``Patient.name``,
``HumanName``), so a context such as ``HumanName.family`` matches wherever a HumanName is.
"""

from __future__ import annotations

from typing import Any

from harness.fhir.model import r4
from harness.fhir.paths import Path


def _context_allows(context: list[str], where: tuple[str, ...], root_type: str) -> bool:
    for expr in context:
        if expr in ("*", "Element") or expr in where:
            return True
        if expr in ("Resource", "DomainResource") and where[0] == root_type:
            return True
        if any(w.endswith("." + expr) or w.split(".", 1)[-1] == expr for w in where):
            return True
    return False


def check_extension(ext: dict[str, Any], where: tuple[str, ...], path: Path, out: Any, root_type: str) -> None:
    """An extension the R4 definitions define: used where it may be, with a value of an allowed type."""
    url = ext.get("url")
    if not isinstance(url, str):
        return
    if "|" in url:
        out.add("structure", f"an extension URL must not carry a version: '{url}'", (path, "url", None), "value")
        return
    definition = r4().extensions.get(url)
    if definition is None:
        return  # not an R4 core extension: a package or profile defines it
    plain = tuple(w for w in where if w)
    if not _context_allows(definition["context"], plain, root_type):
        allowed = ", ".join(definition["context"])
        out.add("structure", f"the extension {url} is not allowed here (allowed on: {allowed}; "
                                 f"this element is {plain[0]})", path, "structure")
    values = [k for k in ext if k.startswith("value")]
    allowed_types = definition["value"]
    if values and not allowed_types:
        out.add("structure", f"the extension {url} is complex: it must not have a value", path, "structure")
    elif values:
        vtype = r4().children(("Extension", "")).get(values[0])
        if vtype is not None and vtype.type not in allowed_types:
            out.add("structure", f"the extension {url} allows values of type {', '.join(allowed_types)}, "
                                     f"not {vtype.type}", (path, values[0], None), "structure")
    parts = definition["parts"]
    if parts:
        parts_given = ext.get("extension")
        given = [e.get("url") for e in parts_given if isinstance(e, dict)] if isinstance(parts_given, list) else []
        for part, (low, _high) in parts.items():
            if low and part not in given:
                out.add("cardinality", f"the extension {url} requires its part '{part}', which is missing",
                            path, "required")
