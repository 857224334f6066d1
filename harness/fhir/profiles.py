"""Constraint profiles (UK Core, any IG package): their differentials compiled onto the compiled R4 base.

A constraint profile's snapshot is its base's with the differential's constraints applied, and
profiles only ever tighten. So a profile compiles into a tree of the elements its differential
(and those of the profiles it derives from in the same package) constrains — minimum and maximum,
fixed values and patterns, bindings, extra constraints, extension slices by URL and other slices
by the value or pattern their discriminator names — and a resource is checked against the
profile by the R4 base walk (:mod:`harness.fhir.validator`) plus one walk of that tree. Value
sets come from the package's terminology; one that cannot be expanded offline is reported as
not evaluated, never as met.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.fhir.invariants import Invariant, compile_invariant, holds
from harness.fhir.model import r4
from harness.fhir.validator import Outcome
from harness.terminology import NotExpandable, Terminology

MAX_DEPTH = 16  # profiles derived from profiles, at most


class ProfileError(Exception):
    """The profile cannot be compiled (unknown base, a differential the compiler does not understand)."""


@dataclass
class PNode:
    """One constrained element (or slice) of a profile."""

    name: str  # JSON name, or 'value[x]'-style choice name
    path: str  # the element id, for messages
    slice: str | None = None
    min: int | None = None
    max: int | None = None  # None: unbounded or not constrained
    fixed: Any = None
    pattern: Any = None
    binding: tuple[str, str] | None = None
    type_profiles: tuple[str, ...] = ()
    types: tuple[str, ...] = ()  # for a choice element: the types the profile still allows
    slicing: tuple[tuple[str, str], ...] = ()  # discriminators (type, path)
    invariants: tuple[Invariant, ...] = ()
    children: list[PNode] = field(default_factory=list)
    slices: list[PNode] = field(default_factory=list)

    def child(self, name: str, path: str) -> PNode:
        for c in self.children:
            if c.name == name:
                return c
        node = PNode(name, path)
        self.children.append(node)
        return node

    def slice_named(self, name: str, path: str) -> PNode:
        for s in self.slices:
            if s.slice == name:
                return s
        node = PNode(self.name, path, slice=name)
        self.slices.append(node)
        return node


@dataclass
class Profile:
    url: str
    name: str
    type: str
    trees: list[PNode]  # this profile's differential and those of its bases in the package


def _segments(element_id: str) -> list[tuple[str, str | None]]:
    parts = element_id.split(".")[1:]
    out = []
    for part in parts:
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def _compile_tree(sd: dict[str, Any]) -> PNode:
    root_type = sd["type"]
    root = PNode(root_type, root_type)
    for el in sd.get("differential", {}).get("element", []):
        element_id = el.get("id") or el["path"]
        node = root
        for name, slice_name in _segments(element_id):
            node = node.child(name, element_id)
            if slice_name:
                node = node.slice_named(slice_name, element_id)
        if element_id == root_type:
            node = root
        if "min" in el:
            node.min = int(el["min"])
        if "max" in el:
            node.max = None if el["max"] == "*" else int(el["max"])
        for key, value in el.items():
            if key.startswith("fixed") and key != "fixed":
                node.fixed = value
            elif key.startswith("pattern") and key != "pattern":
                node.pattern = value
        binding = el.get("binding")
        if binding and binding.get("valueSet") and binding.get("strength") in ("required", "extensible"):
            node.binding = (binding["strength"], binding["valueSet"].split("|")[0])
        profiles = tuple(p for t in el.get("type", []) if t.get("code") == "Extension" for p in t.get("profile", []))
        if profiles:
            node.type_profiles = profiles
        if node.name.endswith("[x]") and el.get("type"):
            node.types = tuple(t["code"] for t in el["type"])
        if "slicing" in el:
            node.slicing = tuple((d["type"], d["path"]) for d in el["slicing"].get("discriminator", []))
        invariants = []
        for c in el.get("constraint", []):
            if c.get("expression") and c.get("key") != "ele-1":
                invariants.append(compile_invariant(c["key"], c.get("severity", "error"), c.get("human", ""),
                                                    c["expression"], el["path"]))
        node.invariants = tuple(invariants)
    return root


def compile_profile(url: str, package: Terminology) -> Profile:
    """The profile ``url`` from the package, with the differentials of its base profiles in the package."""
    trees: list[PNode] = []
    current = url
    sd: dict[str, Any] | None = None
    first: dict[str, Any] | None = None
    for _ in range(MAX_DEPTH):
        sd = package.structure_definitions.get(current)
        if sd is None:
            if current.startswith("http://hl7.org/fhir/StructureDefinition/") and first is not None:
                break  # reached the R4 base, which the compiled R4 table covers
            raise ProfileError(f"profile {current} is not in the package directory")
        first = first or sd
        if sd.get("derivation") != "constraint":
            raise ProfileError(f"{current} is not a constraint profile")
        if not r4().has_type(sd["type"]):
            raise ProfileError(f"{current} constrains {sd['type']}, which is not an R4 type")
        trees.append(_compile_tree(sd))
        current = sd.get("baseDefinition", "")
    else:
        raise ProfileError(f"{url}: more than {MAX_DEPTH} levels of base profiles")
    assert first is not None
    return Profile(url, first.get("name", url), first["type"], trees)


def profile_for(url: str, package: Terminology) -> Profile:
    """The compiled profile (compiled once per package); a profile that cannot be compiled raises ProfileError."""
    found = package.compiled.get(url)
    if found is None:
        try:
            found = compile_profile(url, package)
        except ProfileError as exc:
            found = exc
        package.compiled[url] = found
    if isinstance(found, ProfileError):
        raise found
    result: Profile = found
    return result


# --- checking ------------------------------------------------------------------------------

def _values(parent: Any, name: str) -> list[Any]:
    if not isinstance(parent, dict):
        return []
    if name.endswith("[x]"):
        stem = name[:-3]
        found = [v for k, v in parent.items() if k.startswith(stem) and k[len(stem):len(stem) + 1].isupper()]
    else:
        found = [parent[name]] if name in parent else []
    out: list[Any] = []
    for value in found:
        out.extend(v for v in value if v is not None) if isinstance(value, list) else out.append(value)
    return out


def _at(value: Any, path: str) -> list[Any]:
    values = [value]
    for step in path.split("."):
        values = [v for item in values for v in _values(item, step)]
    return values


def matches_pattern(value: Any, pattern: Any) -> bool:
    """FHIR pattern[x]: every part the pattern gives is in the value (arrays: each item somewhere)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else [value]
        return all(any(matches_pattern(i, p) for i in items) for p in pattern)
    return bool(value == pattern)


def _slice_values(s: PNode, path: str) -> list[Any] | None:
    """What a slice requires at a discriminator path (from its fixed or pattern values), or None."""
    node: PNode | None = s
    for step in path.split("."):
        node = next((c for c in node.children if c.name == step), None) if node else None
    if node is not None and (node.fixed is not None or node.pattern is not None):
        return [node.fixed if node.fixed is not None else node.pattern]
    given = s.fixed if s.fixed is not None else s.pattern
    if given is not None:
        found = _at(given, path)
        return found or None
    return None


def _extension_urls(s: PNode) -> tuple[str, ...]:
    """The URL an extension slice stands for: its type profile, or (a part of a complex extension) its fixed url."""
    if s.type_profiles:
        return s.type_profiles
    url = next((c for c in s.children if c.name == "url"), None)
    return (url.fixed,) if url is not None and isinstance(url.fixed, str) else ()


def _in_slice(value: Any, s: PNode, parent: PNode) -> bool:
    if parent.name in ("extension", "modifierExtension") or (s.type_profiles and not parent.slicing):
        return isinstance(value, dict) and value.get("url") in _extension_urls(s)
    for kind, path in parent.slicing:
        wanted = _slice_values(s, path)
        if wanted is None:
            return False
        got = _at(value, path) if path != "$this" else [value]
        if kind == "pattern":
            if not any(matches_pattern(g, w) for g in got for w in wanted):
                return False
        elif not any(g == w for g in got for w in wanted):
            return False
    return bool(parent.slicing)


@dataclass
class _Check:
    profile: Profile
    package: Terminology
    out: Outcome
    resource: dict[str, Any]


def check_profile(resource: dict[str, Any], profile: Profile, package: Terminology, out: Outcome) -> None:
    """Add to ``out`` every way the resource breaks the profile's constraints (the base walk is separate)."""
    ctx = _Check(profile, package, out, resource)
    for tree in profile.trees:
        _node(tree, [resource], profile.type, ctx)


def _node(node: PNode, parents: list[Any], path: str, ctx: _Check) -> None:
    for parent in parents:
        for child in node.children:
            if child.types and isinstance(parent, dict):
                _choice_types(child, parent, path, ctx)
            values = _values(parent, child.name)
            _element(child, values, f"{path}.{child.name}", ctx)
            for s in child.slices:
                _element(s, [v for v in values if _in_slice(v, s, child)], f"{path}.{child.name}:{s.slice}", ctx)
        for inv in node.invariants:
            _invariant(inv, parent, path, ctx)


def _choice_types(node: PNode, parent: dict[str, Any], path: str, ctx: _Check) -> None:
    stem = node.name[:-3]
    allowed = {stem + t[:1].upper() + t[1:] for t in node.types}
    for key in parent:
        if key.startswith(stem) and key[len(stem):len(stem) + 1].isupper() and key not in allowed:
            ctx.out.add("structure", f"{path}.{key}: the profile allows {stem}[x] only as "
                                     f"{', '.join(node.types)} (profile {ctx.profile.name})", f"{path}.{key}",
                        "structure")


def _element(node: PNode, values: list[Any], path: str, ctx: _Check) -> None:
    out = ctx.out
    if node.min is not None and len(values) < node.min:
        out.add("cardinality", f"{path}: minimum required = {node.min}, but only found {len(values)} "
                               f"(profile {ctx.profile.name})", path, "required")
    if node.max is not None and len(values) > node.max:
        what = "is not allowed" if node.max == 0 else f"max allowed = {node.max}, but found {len(values)}"
        out.add("cardinality", f"{path}: {what} (profile {ctx.profile.name})", path, "structure")
    for value in values:
        if node.fixed is not None and value != node.fixed:
            out.add("structure", f"{path}: the value must be exactly {_show(node.fixed)} (profile {ctx.profile.name})",
                    path, "value")
        if node.pattern is not None and not matches_pattern(value, node.pattern):
            out.add("structure", f"{path}: the value must match the pattern {_show(node.pattern)} "
                                 f"(profile {ctx.profile.name})", path, "value")
        if node.binding is not None:
            _binding(node.binding, value, path, ctx)
        for url in node.type_profiles:
            _extension_profile(url, value, path, ctx)
    if node.children or node.invariants:
        _node(node, values, path, ctx)


def _extension_profile(url: str, value: Any, path: str, ctx: _Check) -> None:
    """An extension slice: the extension's own definition from the package, applied to it."""
    if url.startswith("http://hl7.org/fhir/StructureDefinition/") and url not in ctx.package.structure_definitions:
        return  # an R4 core extension: the base walk checks it against the R4 extension table
    try:
        ext = profile_for(url, ctx.package)
    except ProfileError as exc:
        ctx.out.not_evaluated.setdefault(f"profile:{url}", str(exc))
        return
    for tree in ext.trees:
        _node(tree, [value], path, _Check(ext, ctx.package, ctx.out, ctx.resource))


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) < 120 else text[:117] + "…"


def _codings(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value:
            for c in value["coding"] if isinstance(value["coding"], list) else ():
                if isinstance(c, dict):
                    yield c.get("system"), c.get("code")
        elif "code" in value:
            yield value.get("system"), value.get("code")


def _binding(binding: tuple[str, str], value: Any, path: str, ctx: _Check) -> None:
    strength, url = binding
    pairs = [(s if isinstance(s, str) else None, c) for s, c in _codings(value) if isinstance(c, str)]
    if not pairs:
        return
    try:
        codes = ctx.package.expand(url)
    except NotExpandable as exc:
        ctx.out.not_evaluated.setdefault(f"binding:{url}", str(exc))
        return
    systems = {s for s, _ in codes}
    def ok(system: Any, code: str) -> bool:
        return (system, code) in codes if system else any(c == code for _, c in codes)
    if any(ok(s, c) for s, c in pairs):
        return
    system, code = pairs[0]
    if strength == "required":
        ctx.out.add("binding", f"{path}: the code {system or ''}#{code} is not in the required value set {url} "
                               f"(profile {ctx.profile.name})", path, "code-invalid", False, url)
    elif system in systems:
        ctx.out.add("binding", f"{path}: the code {system}#{code} is not in the extensible value set {url}, "
                               f"although its code system is one the value set uses (profile {ctx.profile.name})",
                    path, "code-invalid", True, url)


def _invariant(inv: Invariant, focus: Any, path: str, ctx: _Check) -> None:
    if not holds(inv, focus, ctx.resource, ctx.resource, ctx.out.not_evaluated):
        ctx.out.add("invariant", f"constraint {inv.key} failed: {inv.human} (profile {ctx.profile.name})", path,
                    "invariant", inv.warning, inv.key)
