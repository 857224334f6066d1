"""Value sets, code systems (and the profiles) of a FHIR package directory the user supplies.

Reads every ValueSet and CodeSystem (JSON or XML) under the directory and expands value
sets offline: explicit concepts, whole code systems that are in the package, imported value
sets, and stored expansions. Anything that would need a terminology server (filters on
SNOMED CT, code systems not in the package) is refused with a reason, so a binding rule
reports ``error`` rather than passing on codes it could not check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.fhir.package import package_resources

Code = tuple[str, str]


class NotExpandable(Exception):
    """The value set cannot be expanded offline; the message says why."""


class Terminology:
    """ValueSets and CodeSystems by canonical URL."""

    def __init__(self) -> None:
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}
        # the package's profiles and extension definitions, read in the same pass (harness.fhir.profiles)
        self.structure_definitions: dict[str, dict[str, Any]] = {}
        self.compiled: dict[str, Any] = {}  # compiled profiles by URL (harness.fhir.profiles.profile_for)
        self._expanded: dict[str, frozenset[Code]] = {}

    def add(self, resource: dict[str, Any]) -> None:
        url = resource.get("url")
        if not isinstance(url, str):
            return
        target = {"ValueSet": self.value_sets, "CodeSystem": self.code_systems,
                  "StructureDefinition": self.structure_definitions}.get(resource.get("resourceType", ""))
        if target is not None:
            target[url] = resource
            if resource.get("version"):
                target[f"{url}|{resource['version']}"] = resource

    @classmethod
    def from_directory(cls, root: Path) -> Terminology:
        term = cls()
        for _, resource in package_resources(root, frozenset({"ValueSet", "CodeSystem", "StructureDefinition"})):
            term.add(resource)
        return term

    def codes_of_system(self, url: str) -> frozenset[Code]:
        cs = self.code_systems.get(url)
        if cs is None:
            raise NotExpandable(f"code system {url} is not in the package directory")
        if cs.get("content") not in (None, "complete"):
            raise NotExpandable(f"code system {url} is not complete in the package (content={cs.get('content')})")
        out: set[Code] = set()
        stack = list(cs.get("concept", []))
        while stack:
            concept = stack.pop()
            out.add((url, concept["code"]))
            stack.extend(concept.get("concept", []))
        return frozenset(out)

    def expand(self, url: str, _seen: frozenset[str] = frozenset()) -> frozenset[Code]:
        """Every (system, code) in the value set."""
        if url in self._expanded:
            return self._expanded[url]
        if url in _seen:
            raise NotExpandable(f"value set {url} imports itself")
        vs = self.value_sets.get(url)
        if vs is None:
            raise NotExpandable(f"value set {url} is not in the package directory")
        codes: set[Code] = set()
        expansion = vs.get("expansion", {}).get("contains")
        if expansion:
            stack = list(expansion)
            while stack:
                c = stack.pop()
                if "code" in c:
                    codes.add((c.get("system", ""), c["code"]))
                stack.extend(c.get("contains", []))
        else:
            compose = vs.get("compose", {})
            for inc in compose.get("include", []):
                codes |= self._include(inc, _seen | {url})
            for exc in compose.get("exclude", []):
                codes -= self._include(exc, _seen | {url})
        result = frozenset(codes)
        self._expanded[url] = result
        return result

    def _include(self, inc: dict[str, Any], seen: frozenset[str]) -> set[Code]:
        if inc.get("filter"):
            raise NotExpandable(
                f"include of {inc.get('system')} uses a filter, which needs a terminology server")
        system = inc.get("system")
        if system and inc.get("concept"):
            part: set[Code] | None = {(system, c["code"]) for c in inc["concept"]}
        elif system:
            part = set(self.codes_of_system(system))
        else:
            part = None
        for vs_url in inc.get("valueSet", []):
            imported = set(self.expand(vs_url, seen))
            part = imported if part is None else part & imported
        return part or set()
