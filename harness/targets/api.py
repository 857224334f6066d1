"""The API target: resources a supplier's FHIR server returns, fed to the same rules as exports.

Discovers what the CapabilityStatement supports, searches each type with paging (up to the
page limit), and yields every resource with the request that returned it as its location.
A request that fails becomes a read error for that request; the run goes on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from harness.results import InputFile, Location
from harness.targets.base import Located, ReadError
from harness.targets.http_client import FhirClient, HttpResult
from harness.wording import json_kind

PAGE_SIZE = 100


def response_problem(result: HttpResult, expect_type: str | None = None) -> str | None:
    """Why a response cannot be used as FHIR JSON, or None."""
    if result.error:
        return result.error
    if result.status != 200:
        return f"HTTP {result.status}"
    if result.json is None:
        kind = result.headers.get("Content-Type", "no Content-Type")
        return f"response is not JSON ({kind})"
    if expect_type and (not isinstance(result.json, dict) or result.json.get("resourceType") != expect_type):
        found = result.json.get("resourceType") if isinstance(result.json, dict) else json_kind(result.json)
        return f"expected a {expect_type}, got {found}"
    return None


def _unusable(result: HttpResult) -> str:
    if result.error:
        return f"target unreachable: {result.error}"
    if result.status in (401, 403):
        return f"authentication refused (HTTP {result.status}) for the CapabilityStatement"
    return f"no usable CapabilityStatement: {response_problem(result, 'CapabilityStatement')}"


class ApiTarget:
    kind = "api"

    def __init__(self, client: FhirClient, *, allow_writes: bool = False,
                 property_overrides: dict[str, Any] | None = None) -> None:
        self.client = client
        self.allow_writes = allow_writes
        self.property_overrides = property_overrides or {}
        self._capabilities: dict[str, Any] | None = None
        self._metadata_hash = hashlib.sha256(b"").hexdigest()
        self._metadata_size = 0

    def capabilities(self) -> tuple[dict[str, Any] | None, HttpResult]:
        result = self.client.request("GET", "metadata", auth=False)
        self._metadata_hash = hashlib.sha256(result.body).hexdigest()
        self._metadata_size = len(result.body)
        problem = response_problem(result, "CapabilityStatement")
        self._capabilities = None if problem else result.json
        return self._capabilities, result

    def searchable_types(self, capabilities: dict[str, Any]) -> list[str]:
        types: list[str] = []
        for rest in capabilities.get("rest", []):
            if rest.get("mode", "server") != "server":
                continue
            for res in rest.get("resource", []):
                if any(i.get("code") == "search-type" for i in res.get("interaction", [])):
                    types.append(res.get("type", ""))
        return sorted(t for t in set(types) if t)

    def items(self, progress: Callable[[int], None] | None = None) -> Iterator[Located | ReadError]:
        capabilities, result = self.capabilities()
        if capabilities is None:
            # nothing can be tested without it: a wrong URL or an unreachable server is not the supplier's verdict
            yield ReadError(Location(request=result.where), _unusable(result), fatal=True)
            return
        for rtype in self.searchable_types(capabilities):
            yield from self.items_for_type(rtype)

    def items_for_type(self, rtype: str) -> Iterator[Located | ReadError]:
        """Every resource a search of one type returns, page by page.

        A harvest that cannot be complete is a read error, so the run cannot pass on it: pages
        that repeat a resource, a page larger than the ``_count`` asked for (FHIR R4 search:
        servers SHALL NOT return more), a ``total`` the pages do not reach, a ``next`` link loop.
        """
        url: str | None = f"{rtype}?_count={PAGE_SIZE}"
        pages = 0
        seen_urls: set[str] = set()
        ids: set[str] = set()
        total: int | None = None
        oversized = False
        while url and pages < self.client.config.page_limit:
            if url in seen_urls:
                yield ReadError(Location(request=url), "harvest incomplete: paging loops back to a page already read")
                return
            seen_urls.add(url)
            result = self.client.request("GET", url)
            pages += 1
            if result.status in (401, 403):
                yield ReadError(Location(request=result.where), f"authentication refused (HTTP {result.status}): "
                                "check the token or client credentials", fatal=True)
                return
            if result.unreachable:
                yield ReadError(Location(request=result.where), f"target unreachable: {result.error}", fatal=True)
                return
            problem = response_problem(result, "Bundle")
            if problem:
                yield ReadError(Location(request=result.where), f"search for {rtype} failed: {problem}")
                return
            bundle = result.json
            if total is None and isinstance(bundle.get("total"), int):
                total = bundle["total"]
            entries = bundle.get("entry", []) if isinstance(bundle.get("entry"), list) else []
            matches = [e for e in entries if not isinstance(e, dict)
                       or (e.get("search") or {}).get("mode", "match") == "match"]
            if len(matches) > PAGE_SIZE and not oversized:
                oversized = True
                yield ReadError(Location(request=result.where),
                                f"harvest incomplete: a page of {rtype} held {len(matches)} matches, more than the "
                                f"_count of {PAGE_SIZE} asked for (servers SHALL NOT return more)")
            for i, entry in enumerate(entries):
                resource = entry.get("resource") if isinstance(entry, dict) else None
                location = Location(request=result.where, pointer=f"/entry/{i}/resource")
                if not isinstance(resource, dict) or not resource.get("resourceType"):
                    yield ReadError(location, "Bundle entry has no resource")
                    continue
                if (entry.get("search") or {}).get("mode", "match") != "match":
                    continue
                rid = resource.get("id")
                if isinstance(rid, str):
                    if rid in ids:
                        yield ReadError(location, f"harvest incomplete: {rtype}/{rid} came back on more than one "
                                                  "page (the server repeats resources, so others may be missing)")
                        continue
                    ids.add(rid)
                full = entry.get("fullUrl")
                yield Located(resource, location, full if isinstance(full, str) else None)
            url = next((link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"), None)
        if url:
            yield ReadError(Location(request=url), f"stopped after {pages} pages of {rtype} (page limit)")
        elif total is not None and len(ids) < total:
            yield ReadError(Location(request=f"{rtype}?_count={PAGE_SIZE}"),
                            f"harvest incomplete: Bundle.total says {total} {rtype}, the pages held {len(ids)}")

    def inputs(self) -> list[InputFile]:
        return [InputFile(self.client.evidence.redactor.url(self.client.base), self._metadata_hash,
                          self._metadata_size)]
