"""The ``http`` check kind: API behaviour, probed with real requests after the resources are read.

A rule lists probes: a request (method, path with ``{id}``, ``{nhs_number}``, ``{family}``,
``{birthdate}`` or ``{unknown_id}`` filled from a Patient the API returned) and what the
answer must show. Each exchange is recorded as evidence against the rule. A transport
failure (timeout, reset, oversized body) is an ``error`` of the rule, never a pass; messages
never quote the sampled patient's data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.checks.registry import Accumulator, RuleContext, Subject, register
from harness.identifiers import NHS_NUMBER_SYSTEM
from harness.results import Issue, Location
from harness.targets.base import Located

if TYPE_CHECKING:
    from harness.evidence import Redactor

STACK_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|"
                         r"\bat [\w.$]+\([\w]+\.(?:java|kt|cs):\d+\)|Exception in thread|\bSystem\.\w+Exception")

_EXPECT = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "status": {"oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]},
        "content_type": {"type": "string"}, "resource_type": {"type": "string"},
        "bundle_type": {"type": "string"}, "contains_sample": {"type": "boolean"},
        "excludes_sample": {"type": "boolean"}, "operation_outcome": {"type": "boolean"},
        "no_stack_trace": {"type": "boolean"}, "no_patient_data": {"type": "boolean"},
        "version_id": {"type": "boolean"}, "fhir_version": {"type": "string"},
        "formats_include": {"type": "string"},
        "declares_operation": {"type": "string", "description": "a CapabilityStatement naming this operation"},
    },
}
_PROBE = {
    "type": "object", "additionalProperties": False, "required": ["request"],
    "properties": {
        "request": {"type": "object", "additionalProperties": False, "required": ["path"], "properties": {
            "method": {"enum": ["GET", "POST", "PUT", "DELETE"]}, "path": {"type": "string"},
            "auth": {"type": "boolean"}, "headers": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "expect": _EXPECT,
        "paging": {"type": "object", "additionalProperties": False, "required": ["count"],
                   "properties": {"count": {"type": "integer", "minimum": 1},
                                  "max_pages": {"type": "integer", "minimum": 2}}},
    },
}


@dataclass
class HttpAccumulator:
    rule: str
    probes: list[dict[str, Any]]
    target: Any
    sample: dict[str, str] | None = None
    subjects: int = 0
    overflow: int = 0

    def observe(self, item: Located, is_subject: bool) -> None:
        r = item.resource
        if self.sample is not None or not is_subject or r.get("resourceType") != "Patient":
            return
        nhs = next((i.get("value") for i in r.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM), None)
        names = r.get("name") or [{}]
        if isinstance(r.get("id"), str) and isinstance(nhs, str):
            self.sample = {"id": r["id"], "nhs_number": nhs, "family": str(names[0].get("family", "")),
                           "birthdate": str(r.get("birthDate", "")), "unknown_id": f"missing-{uuid.uuid4()}"}

    def merge(self, other: Accumulator) -> None:
        assert isinstance(other, HttpAccumulator)
        self.sample = self.sample or other.sample

    def finish(self) -> Iterator[tuple[Issue, Subject]]:
        client = getattr(self.target, "client", None)
        if client is None:
            raise ValueError("http checks need an API target (--api)")
        for probe in self.probes:
            request = probe["request"]
            try:
                path = request["path"].format(**(self.sample or {}))
            except KeyError:
                raise ValueError("no Patient with an NHS number came back from the API to probe with") from None
            result = client.request(request.get("method", "GET"), path, rule=self.rule,
                                    auth=request.get("auth", True), headers=request.get("headers"))
            self.subjects += 1
            subject = Subject(None, None, Location(request=result.where))
            if result.error:
                yield Issue(f"could not evaluate: {result.error}", None, "exception", error=True), subject
                continue
            evidence = getattr(client, "evidence", None)
            for message in _expectations(probe.get("expect", {}), result, self.sample or {},
                                         evidence.redactor if evidence else None):
                yield Issue(message, None, "processing"), subject
            if "paging" in probe:
                yield from self._paging(client, result, probe["paging"], subject)

    def _paging(self, client: Any, first: Any, spec: dict[str, Any],
                subject: Subject) -> Iterator[tuple[Issue, Subject]]:
        count, max_pages = spec["count"], spec.get("max_pages", 50)
        ids: list[str] = []
        result, pages, total = first, 0, None
        while True:
            bundle = result.json if isinstance(result.json, dict) else {}
            total = bundle.get("total", total)
            entries = [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
            if len(entries) > count:
                yield Issue(f"a page held {len(entries)} matches; _count asked for at most {count}", None,
                            "processing"), Subject(None, None, Location(request=result.where))
                return
            ids.extend(str(e.get("resource", {}).get("id")) for e in entries)
            pages += 1
            nxt = next((ln.get("url") for ln in bundle.get("link", []) if ln.get("relation") == "next"), None)
            if not nxt or pages >= max_pages:
                break
            result = client.request("GET", nxt, rule=self.rule)
            if result.error or result.status != 200:
                yield Issue(f"next page failed: {result.error or result.status}", None, "exception",
                            error=bool(result.error)), Subject(None, None, Location(request=result.where))
                return
        if len(ids) != len(set(ids)):
            yield Issue("paging returned some matches more than once", None, "processing"), subject
        if isinstance(total, int) and total != len(ids) and pages < max_pages:
            yield Issue(f"paging returned {len(ids)} matches but the Bundle total is {total}", None,
                        "processing"), subject


LEAK_NAMES = {"nhs_number": "an NHS number", "nhs": "an NHS number", "family": "a name", "name": "a name",
              "birthdate": "a date of birth", "dob": "a date of birth", "death": "a date of death",
              "address": "an address", "telecom": "a phone number or email", "identifier": "an identifier",
              "free-text": "free text about a person", "narrative": "a narrative"}


def _expectations(expect: dict[str, Any], result: Any, sample: dict[str, str],
                  redactor: Redactor | None = None) -> Iterator[str]:
    body = result.json if isinstance(result.json, dict) else None
    if "status" in expect:
        allowed = expect["status"] if isinstance(expect["status"], list) else [expect["status"]]
        if result.status not in allowed:
            yield f"status {result.status}, expected {' or '.join(map(str, allowed))}"
    if "content_type" in expect:
        got = result.headers.get("Content-Type", "").split(";")[0].strip()
        if got != expect["content_type"]:
            yield f"Content-Type '{got or 'none'}', expected '{expect['content_type']}'"
    if expect.get("resource_type") and (body or {}).get("resourceType") != expect["resource_type"]:
        yield f"body is not a {expect['resource_type']}"
    if expect.get("bundle_type") and (body or {}).get("type") != expect["bundle_type"]:
        yield f"Bundle type is '{(body or {}).get('type')}', expected '{expect['bundle_type']}'"
    ids = {str(e.get("resource", {}).get("id")) for e in (body or {}).get("entry", []) if isinstance(e, dict)}
    if expect.get("contains_sample") and sample.get("id") not in ids:
        yield "the expected patient is not in the results"
    if expect.get("excludes_sample") and sample.get("id") in ids:
        yield "the patient is returned although the query should not match it"
    if expect.get("operation_outcome") and not ((body or {}).get("resourceType") == "OperationOutcome"
                                                and (body or {}).get("issue")):
        yield "the error has no OperationOutcome with an issue"
    text = result.body.decode("utf-8", "replace")
    if expect.get("no_stack_trace") and STACK_TRACE.search(text):
        yield "the response contains a stack trace"
    if expect.get("no_patient_data"):
        # the probed patient's details, and any personal value the harvest has seen, in the body or headers
        seen = " ".join([text, *result.headers.values()])
        leaked = {LEAK_NAMES[k] for k in ("nhs_number", "family", "birthdate") if sample.get(k) and sample[k] in seen}
        leaked |= {LEAK_NAMES.get(c, c) for c in (redactor.patient_values_in(seen) if redactor else ())}
        if leaked:
            yield f"the response contains patient data ({', '.join(sorted(leaked))}); it is not quoted here"
    if expect.get("version_id") and not (body or {}).get("meta", {}).get("versionId"):
        yield "the resource has no meta.versionId"
    if expect.get("fhir_version") and (body or {}).get("fhirVersion") != expect["fhir_version"]:
        yield f"fhirVersion is '{(body or {}).get('fhirVersion')}', expected '{expect['fhir_version']}'"
    if expect.get("formats_include") and not any(expect["formats_include"] in str(f)
                                                 for f in (body or {}).get("format", [])):
        yield f"format does not include {expect['formats_include']}"
    if expect.get("declares_operation"):
        name = expect["declares_operation"]
        rests = (body or {}).get("rest", [])
        declared = [op.get("name") for rest in rests for holder in [rest, *rest.get("resource", [])]
                    for op in holder.get("operation", [])]
        if name not in declared:
            yield f"the CapabilityStatement does not declare the ${name} operation"


@register("http", scope="dataset", reads=lambda p: ["Patient"], params={
    "probes": {"type": "array", "minItems": 1, "items": _PROBE},
})
def http(params: dict[str, Any], ctx: RuleContext) -> Callable[[], HttpAccumulator]:
    """Requests to the API answer as the standard says (status, headers, body)."""
    return lambda: HttpAccumulator(ctx.rule_id, params["probes"], ctx.target)
