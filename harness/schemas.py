"""JSON Schema validation of our YAML and JSON documents, with line numbers from the source."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import Problem
from harness.yamlsource import YamlDocument

if TYPE_CHECKING:
    import jsonschema


@cache
def _validator(path: Path) -> jsonschema.protocols.Validator:
    import jsonschema  # noqa: PLC0415 - only when a document is validated (a run with linted packs does not)

    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


def schema_problems(doc: YamlDocument, schema: Path, rule_of: Any = None) -> list[Problem]:
    """Every schema error in a document, each with the line of the offending value."""
    problems = []
    errors = sorted(_validator(schema).iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path)))
    for err in errors:
        pointer = tuple(err.absolute_path)
        where = "/".join(str(p) for p in pointer) or "(top level)"
        rule = rule_of(pointer) if rule_of else None
        problems.append(Problem(f"{where}: {err.message}", doc.path, doc.line_of(pointer), rule))
    return problems


def instance_problems(data: Any, schema: Path, source: str) -> list[Problem]:
    """Every schema error in a JSON document, each naming the file and the JSON pointer."""
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [Problem(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}", source, None, None) for e in errors]


def validate_params(schema: dict[str, Any], params: dict[str, Any]) -> list[str]:
    import jsonschema  # noqa: PLC0415 - see _validator

    cls = jsonschema.validators.validator_for(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or 'check'}: {e.message}"
        for e in cls(schema).iter_errors(params)
    ]
