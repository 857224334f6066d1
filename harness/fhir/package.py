"""Reading conformance resources (StructureDefinition, ValueSet, CodeSystem) from a package directory.

Files may be JSON or FHIR XML; XML is converted with the R4 structure table. Files of other
resource types are skipped without being parsed in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from lxml import etree

from harness.errors import ConfigurationError, Problem
from harness.fhir.xml import XmlConversionError, resource_to_json

_F = "{http://hl7.org/fhir}"
# Package files are read like any input: no entities, no DTDs, nothing fetched.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def read_resource(path: Path, types: frozenset[str]) -> dict[str, Any] | None:
    """The resource in ``path`` if its type is one of ``types``; a broken file is a configuration error."""
    try:
        if path.suffix.lower() == ".json":
            data = orjson.loads(path.read_bytes())
        else:
            with path.open("rb") as f:
                _, root = next(etree.iterparse(f, events=("start",), resolve_entities=False, no_network=True,
                                               load_dtd=False, huge_tree=False))
                if root.tag.removeprefix(_F) not in types:
                    return None
            data = resource_to_json(etree.parse(str(path), _PARSER).getroot())
    except (orjson.JSONDecodeError, etree.XMLSyntaxError, XmlConversionError, StopIteration) as exc:
        raise ConfigurationError(Problem(f"cannot read package file: {exc}", str(path))) from None
    return data if isinstance(data, dict) and data.get("resourceType") in types else None


def package_resources(root: Path, types: frozenset[str]) -> Iterator[tuple[Path, dict[str, Any]]]:
    if not root.is_dir():
        raise ConfigurationError(Problem("package directory does not exist", str(root)))
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".json", ".xml"):
            resource = read_resource(path, types)
            if resource is not None:
                yield path, resource
