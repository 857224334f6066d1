"""Evidence of API exchanges, redacted before it is stored or printed.

Secrets (Authorization, cookies, anything token-like, and the credentials the run was given)
are always removed. Patient data — NHS numbers, names, addresses, telecoms, dates of birth,
narrative — is replaced by stable placeholders (the same value gets the same placeholder
within a run) unless the run asked for ``full`` evidence; every replacement is counted in
the redaction log.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson

SECRET = "«secret»"
SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|session|password", re.I)
NHS_LIKE = re.compile(r"(?<!\d)(\d{3}[ -]?\d{3}[ -]?\d{4})(?!\d)")
PATIENT_QUERY = {"identifier": "nhs", "family": "name", "given": "name", "name": "name", "birthdate": "dob",
                 "address": "address", "address-postalcode": "address", "address-city": "address",
                 "phone": "telecom", "email": "telecom", "telecom": "telecom"}
NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "postalCode", "text")
MAX_BODY = 64 * 1024
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
DATES = {"birthDate": "dob", "deceasedDateTime": "death"}
# free text a person wrote about a person: QuestionnaireResponse answers, Annotation notes, comments
FREE_TEXT = ("valueString", "comment")
WORD = re.compile(r"[^\W_]+")
EVIDENCE_ID = re.compile(r"\[(EX-\d+)\]")  # how locations cite an exchange: "GET … [EX-00012]"


@dataclass
class Redactor:
    """Replaces secrets always and patient data unless ``full``; the same value, the same placeholder.

    Two passes. The structured pass knows where FHIR puts personal data (names, identifiers of
    any system, birth and death dates, addresses, telecoms, narrative, free-text answers and
    notes) and learns each value it replaces. The value pass then replaces those values wherever
    else they occur — OperationOutcome diagnostics, error pages, headers, URLs — in this
    exchange and, when the evidence is written, in every exchange of the run.
    """

    full: bool = False
    secrets: list[str] = field(default_factory=list)
    log: Counter[str] = field(default_factory=Counter)
    _placeholders: dict[tuple[str, str], str] = field(default_factory=dict)
    _counts: Counter[str] = field(default_factory=Counter)
    _known: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)  # first word -> value -> (cat, ph)

    def placeholder(self, category: str, value: str) -> str:
        """The value's placeholder (the value itself in ``full`` mode); either way the value is learned."""
        key = (category, value)
        found = self._placeholders.get(key)
        if found is None:
            self._counts[category] += 1
            found = self._placeholders[key] = f"«{category}-{self._counts[category]}»"
            self._learn(category, value, found)
        if self.full:
            return value
        self.log[category] += 1
        return found

    def _learn(self, category: str, value: str, placeholder: str) -> None:
        """Remember a personal value (and, for dates, its day/month/year spelling) for the value pass."""
        spellings = [value]
        if category in ("dob", "death") and len(value) >= 10 and value[4] == "-" and value[7] == "-":
            spellings.append(f"{value[8:10]}/{value[5:7]}/{value[:4]}")
        for spelling in spellings:
            words = list(WORD.finditer(spelling))
            if not words:
                continue
            core = spelling[words[0].start():words[-1].end()]
            # one- and two-letter values (initials, a house number) would hide ordinary text, not a person
            if len(core) >= 3 and not any(c in core for c in '"\\\n\r\t'):
                self._known.setdefault(words[0].group().lower(), {})[core.lower()] = (category, placeholder)

    def _matches(self, text: str) -> Iterator[tuple[int, int, str, str]]:
        """(start, end, category, placeholder) of each learned value in ``text``, on word boundaries."""
        last = 0
        for m in WORD.finditer(text):
            start = m.start()
            candidates = self._known.get(m.group().lower()) if start >= last else None
            for value, (category, placeholder) in sorted((candidates or {}).items(), key=lambda kv: -len(kv[0])):
                end = start + len(value)
                if text[start:end].lower() == value and (end == len(text) or not text[end].isalnum()):
                    yield start, end, category, placeholder
                    last = end
                    break

    def scrub(self, text: str) -> str:
        """Replace every learned personal value in free text (case-insensitive, on word boundaries)."""
        if self.full or not self._known or not text:
            return text
        out, last = [], 0
        for start, end, category, placeholder in self._matches(text):
            out += [text[last:start], placeholder]
            self.log[category] += 1
            last = end
        return "".join([*out, text[last:]]) if out else text

    def patient_values_in(self, text: str) -> list[str]:
        """The kinds of learned personal value that occur in ``text`` (in ``full`` mode too)."""
        return sorted({category for _s, _e, category, _p in self._matches(text)})

    def _secrets(self, text: str) -> str:
        for secret in self.secrets:
            if secret and secret in text:
                self.log["secret"] += text.count(secret)
                text = text.replace(secret, SECRET)
        return text

    def text(self, text: str) -> str:
        text = self._secrets(text)
        if self.full:
            return text
        return self.scrub(NHS_LIKE.sub(lambda m: self.placeholder("nhs", re.sub(r"\D", "", m.group(1))), text))

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, value in headers.items():
            if SECRET_HEADER.search(name):
                self.log["secret"] += 1
                out[name] = SECRET
            else:
                out[name] = self.text(value)
        return out

    def url(self, url: str) -> str:
        parts = urlsplit(self._secrets(url))
        query = []
        for key, raw in parse_qsl(parts.query, keep_blank_values=True):
            category = PATIENT_QUERY.get(key.split(":")[0])
            value = raw
            if SECRET_HEADER.search(key):
                self.log["secret"] += 1
                value = SECRET
            elif category and not self.full:
                if key.startswith("identifier") and "|" in raw:
                    system, _, code = raw.rpartition("|")
                    value = f"{system}|{self.placeholder(category, code)}"
                else:
                    prefix = raw[:2] if category == "dob" and raw[:2].isalpha() else ""
                    value = prefix + self.placeholder(category, raw[len(prefix):])
            else:
                value = self.text(raw)
            query.append((key, value))
        path = self.text(parts.path)
        # for reading, not for sending: values are shown as they are
        return urlunsplit((parts.scheme, parts.netloc, path, "&".join(f"{k}={v}" for k, v in query), ""))

    def body(self, raw: bytes) -> str:
        """A response or request body, redacted: JSON structurally, anything else as text."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = raw[:MAX_BODY].decode("utf-8", "replace")
            suffix = f"\n… {len(raw) - MAX_BODY} more bytes not kept" if len(raw) > MAX_BODY else ""
            return self.text(text) + suffix
        # the structured pass learns every personal value; the store's value pass then scrubs the text
        text = orjson.dumps(self.json(data), option=orjson.OPT_INDENT_2).decode()
        return text if len(text) <= MAX_BODY else text[:MAX_BODY] + "\n… truncated"

    def json(self, node: Any, parent: str = "") -> Any:
        if isinstance(node, dict):
            return {k: self._member(k, v, node) for k, v in node.items()}
        if isinstance(node, list):
            return [self.json(v, parent) for v in node]
        if isinstance(node, str):
            # links in Bundles carry search parameters: redact them like request URLs
            return self.url(node) if node.startswith(("http://", "https://")) and "?" in node else self.text(node)
        return node

    def json_secrets_only(self, node: Any) -> Any:
        """Remove secrets but keep everything else (for synthetic, generated data)."""
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if SECRET_HEADER.search(k) and isinstance(v, str):
                    self.log["secret"] += 1
                    out[k] = SECRET
                else:
                    out[k] = self.json_secrets_only(v)
            return out
        if isinstance(node, list):
            return [self.json_secrets_only(v) for v in node]
        return self._secrets(node) if isinstance(node, str) else node

    def _member(self, key: str, value: Any, owner: dict[str, Any]) -> Any:
        if SECRET_HEADER.search(key) and isinstance(value, str):
            self.log["secret"] += 1
            return SECRET
        if key == "div" and isinstance(value, str):
            return self.placeholder("narrative", value)
        if key in DATES and isinstance(value, str):
            return self.placeholder(DATES[key], value)
        if key in FREE_TEXT and isinstance(value, str) and owner.get("resourceType") is None:
            return self.placeholder("free-text", value)
        if key == "note" and isinstance(value, list):  # Annotations: what a carer wrote
            return [{**self.json(n), "text": self.placeholder("free-text", n["text"])}
                    if isinstance(n, dict) and isinstance(n.get("text"), str) else self.json(n) for n in value]
        if key == "name" and isinstance(value, list):
            return [self._parts(v, NAME_PARTS, "name") for v in value]
        if key == "name" and isinstance(value, dict):
            return self._parts(value, NAME_PARTS, "name")
        if key == "address" and isinstance(value, (list, dict)):
            items = value if isinstance(value, list) else [value]
            done = [self._parts(v, ADDRESS_PARTS, "address") for v in items]
            return done if isinstance(value, list) else done[0]
        if key == "telecom" and isinstance(value, list):
            return [{**t, "value": self.placeholder("telecom", str(t["value"]))} if isinstance(t, dict)
                    and "value" in t else t for t in value]
        if key == "identifier" and isinstance(value, (list, dict)):
            items = value if isinstance(value, list) else [value]
            done = [self._identifier(v) for v in items]
            return done if isinstance(value, list) else done[0]
        return self.json(value, key)

    def _identifier(self, value: Any) -> Any:
        if not isinstance(value, dict) or not isinstance(value.get("value"), str):
            return self.json(value)
        category = "nhs" if value.get("system") == NHS_SYSTEM else "identifier"
        raw = re.sub(r"\D", "", value["value"]) if category == "nhs" else value["value"]
        return {**self.json({k: v for k, v in value.items() if k != "value"}),
                "value": self.placeholder(category, raw)}

    def _parts(self, value: Any, parts: tuple[str, ...], category: str) -> Any:
        if not isinstance(value, dict):
            return self.json(value)
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in parts and isinstance(v, str):
                out[k] = self.placeholder(category, v)
            elif k in parts and isinstance(v, list):
                out[k] = [self.placeholder(category, x) if isinstance(x, str) else x for x in v]
            else:
                out[k] = self.json(v)
        return out


@dataclass
class Exchange:
    """One HTTP request and its answer, as stored (already redacted)."""

    id: str
    rule: str | None
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    response_headers: dict[str, str]
    response_body: str | None
    elapsed_ms: float
    error: str | None = None

    def describe(self) -> str:
        return f"{self.method} {self.url} [{self.id}]"


@dataclass
class EvidenceStore:
    """Every exchange of a run, redacted as it is recorded."""

    redactor: Redactor
    exchanges: list[Exchange] = field(default_factory=list)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_artifact(self, prefix: str, content: dict[str, Any]) -> str:
        """Store a non-exchange record (a counterexample); secrets are still removed."""
        name = f"{prefix}-{len(self.artifacts) + 1:03d}"
        self.artifacts[name] = {"id": name, **self.redactor.json_secrets_only(content)}
        return name

    def record(self, *, rule: str | None, method: str, url: str, request_headers: dict[str, str],
               request_body: bytes | None, status: int | None, response_headers: dict[str, str],
               response_body: bytes | None, elapsed_ms: float, error: str | None) -> Exchange:
        r = self.redactor
        exchange = Exchange(
            id=f"EX-{len(self.exchanges) + 1:05d}", rule=rule, method=method, url=r.url(url),
            request_headers=r.headers(request_headers),
            request_body=r.body(request_body) if request_body else None, status=status,
            response_headers=r.headers(response_headers),
            response_body=r.body(response_body) if response_body else None,
            elapsed_ms=round(elapsed_ms, 1), error=r.text(error) if error else None,
        )
        self._scrub(exchange)  # values learned from this exchange's bodies, wherever else they occur in it
        self.exchanges.append(exchange)
        return exchange

    def _scrub(self, ex: Exchange) -> None:
        scrub = self.redactor.scrub
        ex.url = scrub(ex.url)
        ex.request_headers = {k: scrub(v) for k, v in ex.request_headers.items()}
        ex.response_headers = {k: scrub(v) for k, v in ex.response_headers.items()}
        ex.request_body = scrub(ex.request_body) if ex.request_body else ex.request_body
        ex.response_body = scrub(ex.response_body) if ex.response_body else ex.response_body
        ex.error = scrub(ex.error) if ex.error else ex.error

    def summary(self) -> dict[str, Any]:
        return {"mode": "full" if self.redactor.full else "redacted", "exchanges": len(self.exchanges),
                "redactions": dict(sorted(self.redactor.log.items()))}

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for ex in self.exchanges:
            self._scrub(ex)  # values learned in later exchanges too
            (directory / f"{ex.id}.json").write_bytes(
                orjson.dumps(vars(ex), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        for name, content in self.artifacts.items():
            (directory / f"{name}.json").write_bytes(
                orjson.dumps(content, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        (directory / "redaction-log.json").write_bytes(
            orjson.dumps(self.summary(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
