"""Derive a rule pack from a FHIR package's profiles: ``care-assure packs generate --from-package DIR``.

For each selected profile the differential is read on top of the R4 base (the committed R4
structure table, itself generated from the R4 snapshots) and becomes ``profile`` rules:

- cardinality: every ``min``/``max`` that tightens the base (slices and the extensions a profile
  names included; the discriminator of a slice, which is true by definition, is left out);
- binding: every required binding, with its code list expanded from the package's value sets
  (or, for BCP-47 languages, the code system and syntax), so no package is needed at run time;
- system: a near miss of a slice's fixed identifier system (case, trailing slash, spelling);
- must-support: one rule per profile that no must-support element is present but empty.

Each rule cites the profile, its version and the element. What cannot be encoded (a required
binding whose value set needs a terminology server) is listed in the pack's ``not_encoded``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigurationError
from harness.fhir.model import R4Model, r4
from harness.fhir.package import package_resources
from harness.terminology import NotExpandable, Terminology

BCP47 = "urn:ietf:bcp:47"
BCP47_SYNTAX = r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*"
LANGUAGE_VALUE_SETS = frozenset({"http://hl7.org/fhir/ValueSet/all-languages", "http://hl7.org/fhir/ValueSet/languages"})


@dataclass
class PackSpec:
    pack: str
    title: str
    standard_id: str
    standard_title: str
    release: str
    url: str
    effective_from: dt.date
    profiles: list[str]
    draft_level: str = "SHOULD"
    source: str = ""


@dataclass
class _Profile:
    sd: dict[str, Any]
    name: str
    version: str
    status: str
    resource: str
    elements: list[dict[str, Any]] = field(default_factory=list)


def _segments(element_id: str) -> list[tuple[str, str | None]]:
    out = []
    for part in element_id.split(".")[1:]:
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def _name(sd: dict[str, Any]) -> str:
    return str(sd["url"]).rsplit("/", 1)[-1]


def _slug(element_id: str) -> str:
    parts = []
    for name, slice_name in _segments(element_id):
        parts.append(re.sub(r"[^A-Za-z0-9]", "", slice_name or name).upper() or "X")
    return "-".join(parts) or "RESOURCE"


class _Generator:
    def __init__(self, package: Path, spec: PackSpec, model: R4Model) -> None:
        self.spec = spec
        self.model = model
        self.sds: dict[str, dict[str, Any]] = {}
        for _, sd in package_resources(package, frozenset({"StructureDefinition"})):
            self.sds[sd["url"]] = sd
        self.terminology = Terminology.from_directory(package)
        self.not_encoded: list[dict[str, str]] = []

    # -- paths -------------------------------------------------------------------------------------------

    def _steps(self, profile: dict[str, Any], element_id: str) -> list[dict[str, Any]]:
        """The element id as path steps, each slice resolved to the field value that selects it."""
        by_id = {e["id"]: e for e in profile["differential"]["element"]}
        steps: list[dict[str, Any]] = []
        prefix = element_id.split(".", maxsplit=1)[0]
        for name, slice_name in _segments(element_id):
            prefix += f".{name}" + (f":{slice_name}" if slice_name else "")
            step: dict[str, Any] = {"name": name}
            if slice_name:
                step["slice"] = self._slice_selector(by_id, prefix, name)
            steps.append(step)
        return steps

    def _slice_selector(self, by_id: dict[str, dict[str, Any]], slice_id: str, name: str) -> dict[str, str]:
        element = by_id.get(slice_id, {})
        if name in ("extension", "modifierExtension"):
            urls = [p for t in element.get("type", []) for p in t.get("profile", [])]
            fixed = by_id.get(f"{slice_id}.url", {}).get("fixedUri")
            # a nested extension of a complex extension is identified by its slice name
            return {"url": urls[0] if urls else fixed or slice_id.rsplit(":", 1)[1]}
        for child in ("system", "url"):
            fixed = by_id.get(f"{slice_id}.{child}", {})
            value = fixed.get("fixedUri") or fixed.get("patternUri")
            if value:
                return {child: value}
        raise ConfigurationError(f"{slice_id}: cannot tell how this slice is selected (no fixed system)")

    def _base(self, resource: str, element_id: str) -> tuple[int, str] | None:
        """Base (min, max) of the element in R4; a slice's base is its sliced element's."""
        state = (resource, "")
        info = None
        for name, _ in _segments(element_id):
            children = self.model.children(state)
            if name.endswith("[x]"):
                stem = name[:-3]
                info = next((c for c in children.values() if c.choice and c.choice.rsplit(".", 1)[-1] == stem), None)
            else:
                info = children.get(name)
            if info is None:
                return None
            state = info.state
        if info is None:
            return None
        return info.min, "*" if info.many else "1"

    # -- rules -------------------------------------------------------------------------------------------

    def profile(self, url: str) -> list[dict[str, Any]]:
        sd = self.sds.get(url)
        if sd is None:
            raise ConfigurationError(f"profile {url} is not in the package")
        p = _Profile(sd, sd["url"].rsplit("/", 1)[-1], sd.get("version", ""), sd.get("status", ""), sd["type"],
                     sd.get("differential", {}).get("element", []))
        rules = []
        for element in p.elements:
            rules += self._cardinality(p, element)
            rules += self._binding(p, element, element["id"], self._steps(sd, element["id"]))
            rules += self._extension_rules(p, element)
            rules += self._system(p, element)
        ms = [{"element": e["id"], "path": self._steps(sd, e["id"])} for e in p.elements
              if e.get("mustSupport") is True and "." in e["id"]]
        if ms:
            rules.append(self._rule(p, "MS", "Must-support elements are never present but empty",
                                    f"{p.name} {p.version}: must-support elements "
                                    f"({', '.join(m['element'].split('.', 1)[1] for m in ms)}); FHIR ele-1",
                                    {"constraint": "must-support", "elements": ms},
                                    "Leave out any must-support element you hold no data for, rather than sending "
                                    "it empty or with a placeholder such as 'N/A' or 'unknown'.", "MUST"))
        return rules

    def _rule(self, p: _Profile, suffix: str, title: str, clause: str, check: dict[str, Any], remediation: str,
              level: str | None = None, element: str | None = None) -> dict[str, Any]:
        draft = p.status == "draft"
        rule_id = f"UKC-{p.resource.upper()}-{_slug(element) + '-' if element else ''}{suffix}"
        rule: dict[str, Any] = {
            "id": rule_id, "title": f"{p.resource}: {title}",
            "level": self.spec.draft_level if draft else (level or "MUST"),
            "standard": self.spec.standard_id, "clause": clause, "applies_to": ["export", "api"],
            "effective_from": self.spec.effective_from.isoformat(), "resource": p.resource,
            "when_absent": "not-applicable",  # a profile constrains the resources sent, not which are sent
            "check": {"kind": "profile", "profile": f"{p.sd['url']}|{p.version}",
                      **({"element": element} if element else {}), **check},
            "remediation": remediation,
        }
        if draft:
            rule["note"] = (f"{p.name} {p.version} is a draft profile of the UK Core current build; "
                            f"{self.spec.draft_level} until it is published.")
        return rule

    def _cardinality(self, p: _Profile, element: dict[str, Any]) -> list[dict[str, Any]]:
        eid = element["id"]
        if "." not in eid or ("min" not in element and "max" not in element):
            return []
        segs = _segments(eid)
        parent_slice = next((s for _, s in reversed(segs[:-1]) if s), None)
        if parent_slice and segs[-1][0] in ("system", "url") and (element.get("fixedUri") or element.get("patternUri")):
            return []  # the slice's discriminator: true by definition
        base = self._base(p.resource, eid)
        base_min, base_max = base if base else (0, "*")
        new_min = int(element.get("min", base_min if not segs[-1][1] else 0))
        new_max = str(element.get("max", base_max))
        tighter_min = new_min > (0 if segs[-1][1] else base_min)
        tighter_max = new_max != "*" and (base_max == "*" or int(new_max) < int(base_max) or bool(segs[-1][1]))
        if not (tighter_min or tighter_max):
            return []
        readable = eid.split(".", 1)[1]
        what = f"{new_min}..{new_max}"
        return [self._rule(
            p, "CARD", f"{readable} occurs {what}", f"{p.name} {p.version}, {eid} ({what})",
            {"constraint": "cardinality", "path": self._steps(p.sd, eid), "min": new_min, "max": new_max},
            f"Send {readable} {'at least ' + str(new_min) + ' and ' if new_min else ''}at most {new_max} "
            f"time{'s' if new_max != '1' else ''} in each {eid.rsplit('.', 2)[-2].split(':')[0]}, as {p.name} "
            "requires." if new_max != "*" else
            f"Always send {readable}: {p.name} requires it (at least {new_min}).", element=eid)]

    def _binding(self, p: _Profile, element: dict[str, Any], eid: str, steps: list[dict[str, Any]],
                 via: str = "") -> list[dict[str, Any]]:
        binding = element.get("binding", {})
        if binding.get("strength") != "required" or not binding.get("valueSet"):
            return []
        vs = binding["valueSet"].split("|")[0]
        readable = eid.split(".", 1)[1] if "." in eid else eid
        check: dict[str, Any]
        if vs in LANGUAGE_VALUE_SETS:
            check = {"constraint": "binding", "path": steps, "code_system": BCP47, "code_pattern": BCP47_SYNTAX}
        else:
            try:
                codes = sorted(self.terminology.expand(vs))
            except NotExpandable as exc:
                self.not_encoded.append({"standard": self.spec.standard_id, "clause": f"{p.name} {p.version}, {eid}",
                                         "why": f"required binding not encoded: {exc}"})
                return []
            if not codes:
                self.not_encoded.append({"standard": self.spec.standard_id, "clause": f"{p.name} {p.version}, {eid}",
                                         "why": f"required binding not encoded: value set {vs} is empty here"})
                return []
            check = {"constraint": "binding", "path": steps, "codes": [list(c) for c in codes]}
        source = f" (from {via})" if via else ""
        return [self._rule(
            p, "BIND", f"{readable} uses a code from its required value set",
            f"{p.name} {p.version}, {eid}: required binding to {vs}{source}", check,
            f"Code {readable} only with codes from {vs}; map local codes before sending.", element=eid)]

    def _extension_rules(self, p: _Profile, element: dict[str, Any]) -> list[dict[str, Any]]:
        """A profile's extension slice brings the extension's own value constraints with it."""
        if element.get("sliceName") is None or not element["id"].rsplit(".", 1)[-1].startswith("extension"):
            return []
        urls = [u for t in element.get("type", []) for u in t.get("profile", [])]
        ext = self.sds.get(urls[0]) if urls else None
        if ext is None:
            return []
        rules = []
        base_steps = self._steps(p.sd, element["id"])
        for ext_el in ext.get("differential", {}).get("element", []):
            if ext_el["id"] != "Extension.value[x]":
                continue
            eid = f"{element['id']}.value[x]"
            steps = [*base_steps, {"name": "value[x]"}]
            if int(ext_el.get("min", 0)) >= 1:
                rules.append(self._rule(
                    p, "CARD", f"{eid.split('.', 1)[1]} is present when the extension is",
                    f"{p.name} {p.version}, {element['id']} ({_name(ext)} {ext.get('version', '')}: "
                    f"Extension.value[x] 1..1)",
                    {"constraint": "cardinality", "path": steps, "min": 1, "max": "1"},
                    f"Give the {_name(ext)} extension a value, or leave the extension out.", element=eid))
            rules += self._binding(p, ext_el, eid, steps, via=f"{_name(ext)} {ext.get('version', '')}")
        return rules

    def _system(self, p: _Profile, element: dict[str, Any]) -> list[dict[str, Any]]:
        eid = element["id"]
        segs = _segments(eid)
        if len(segs) < 2 or segs[-1][0] != "system" or not segs[-2][1] or not element.get("fixedUri"):
            return []
        parent = eid.rsplit(".", 1)[0].rsplit(":", 1)[0]
        fixed = element["fixedUri"]
        return [self._rule(
            p, "SYS", f"{parent.split('.', 1)[1]} systems are not near misses of {fixed}",
            f"{p.name} {p.version}, {eid} fixed to {fixed}",
            {"constraint": "system", "path": self._steps(p.sd, parent), "system": fixed},
            f"Use exactly {fixed} as the system (same case and spelling, no trailing slash).",
            element=eid.rsplit(".", 1)[0])]


def generate_pack(package: Path, spec: PackSpec, model: R4Model | None = None) -> tuple[str, list[dict[str, str]]]:
    """The pack as YAML text, and what could not be encoded (also inside the pack)."""
    gen = _Generator(package, spec, model or r4())
    rules: list[dict[str, Any]] = []
    for url in spec.profiles:
        rules += gen.profile(url)
    seen: set[str] = set()
    for rule in rules:  # ids must be unique; a second constraint on one element gets a counter
        base, n = rule["id"], 2
        while rule["id"] in seen:
            rule["id"], n = f"{base}-{n}", n + 1
        seen.add(rule["id"])
    doc = {
        "pack": spec.pack, "title": spec.title, "version": spec.release,
        "description": f"Generated by `care-assure packs generate` from {spec.source or package.name}; "
                       "regenerate and review rather than editing by hand.",
        "standards": [{"id": spec.standard_id, "title": spec.standard_title, "version": spec.release,
                       "url": spec.url, "evidence": "V-P"}],
        "rules": rules,
    }
    if gen.not_encoded:
        doc["not_encoded"] = gen.not_encoded
    header = (f"# GENERATED by `care-assure packs generate --from-package` ({spec.source}).\n"
              "# Do not edit: change the generator or its inputs, regenerate (make packs) and review the diff.\n")
    return header + yaml.safe_dump(doc, sort_keys=False, width=110, allow_unicode=True), gen.not_encoded
