"""SARIF 2.1.0 rendered from the canonical report, so code-scanning dashboards show findings.

Each rule in force is a ``reportingDescriptor`` (with its standard, clause and remediation);
each finding a ``result`` at its file and line (export runs) or with the request as a logical
location (API runs). Levels: MUST → error, SHOULD → warning, MAY → note.
"""

from __future__ import annotations

from typing import Any

import orjson

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"MUST": "error", "SHOULD": "warning", "MAY": "note"}


def _location(f: dict[str, Any]) -> dict[str, Any] | None:
    if f["file"]:
        physical: dict[str, Any] = {"artifactLocation": {"uri": f["file"].replace("!/", "/"),
                                                         "uriBaseId": "EXPORTROOT"}}
        if f["line"]:
            physical["region"] = {"startLine": f["line"]}
        location: dict[str, Any] = {"physicalLocation": physical}
        if f["pointer"]:
            location["logicalLocations"] = [{"fullyQualifiedName": f["pointer"], "kind": "element"}]
        return location
    if f["location"]:
        return {"logicalLocations": [{"fullyQualifiedName": f["location"], "kind": "resource"}]}
    return None


def render_sarif(report: dict[str, Any]) -> bytes:
    run = report["run"]
    rules = report["rules"]
    index = {r["id"]: i for i, r in enumerate(rules)}
    descriptors = [{
        "id": r["id"], "name": r["id"].replace("-", ""),
        "shortDescription": {"text": r["title"]},
        "fullDescription": {"text": f"{r['standard']}: {r['clause']}"},
        "help": {"text": r["remediation"]},
        "defaultConfiguration": {"level": LEVEL[r["level"]]},
        "properties": {"level": r["level"], "pack": r["pack"], "standard": r["standard"], "clause": r["clause"],
                       "outcome": r["outcome"]},
    } for r in rules]
    levels = {r["id"]: r["level"] for r in rules}
    results = []
    for f in report["findings"]:
        result: dict[str, Any] = {
            "ruleId": f["rule"], "ruleIndex": index[f["rule"]],
            "level": "error" if f["kind"] == "error" else LEVEL[levels[f["rule"]]],
            "kind": "fail",
            "message": {"text": f["message"]},
            "fingerprints": {"care-assure/v1": f["id"]},
            "properties": {k: f[k] for k in ("resource_type", "resource_id", "path", "code", "kind") if f[k]},
        }
        location = _location(f)
        if location:
            result["locations"] = [location]
        results.append(result)
    notifications = [{"descriptor": {"id": r["id"]}, "level": "error",
                      "message": {"text": f"{r['id']} could not be evaluated: {r['message']}"}}
                     for r in rules if r["outcome"] == "error"]
    sarif = {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "care-assure", "version": run["harness"]["version"],
                                "rules": descriptors}},
            "automationDetails": {"id": f"{run['suite']['id']}/{run['id']}"},
            "originalUriBaseIds": {"EXPORTROOT": {"description": {"text": "the directory holding the export"}}},
            "invocations": [{"executionSuccessful": not notifications,
                             "toolExecutionNotifications": notifications,
                             "properties": {"decision": report["decision"]["outcome"], "as_of": run["as_of"]}}],
            "results": results,
        }],
    }
    return orjson.dumps(sarif, option=orjson.OPT_INDENT_2) + b"\n"
