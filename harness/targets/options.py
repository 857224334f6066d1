"""One model of what is assessed and how it is reached, shared by `run`, `round run`, `replay` and pytest.

The command line and the pytest plugin only collect values into :class:`TargetOptions`; the
checks of those values (bounds, exactly one target, the evidence mode, secrets named by
environment variables) and the building of the client live here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import ConfigurationError, Problem

EVIDENCE_MODES = ("redacted", "full")
CONNECT_TIMEOUT, READ_TIMEOUT, PAGE_LIMIT = 5.0, 30.0, 100  # the client's defaults (ClientConfig uses these)
# (smallest, largest) for each number a user may give; units are in the option's help
BOUNDS: dict[str, tuple[float, float]] = {
    "connect_timeout": (0.1, 600), "read_timeout": (0.1, 3600), "page_limit": (1, 100_000),
    "seed": (0, 2**32 - 1), "examples": (1, 100_000),
}
UNITS = {"connect_timeout": "seconds", "read_timeout": "seconds", "page_limit": "pages", "seed": "",
         "examples": "examples"}


@dataclass(frozen=True, slots=True)
class TargetOptions:
    export: tuple[Path, ...] = ()
    csv_map: tuple[Path, ...] = ()  # a supplier's CSV data dictionaries, tried before the shipped ones
    api: str | None = None
    token_env: str | None = None  # secrets are named by environment variable, never given on a command line
    oauth_token_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    scope: str | None = None
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    page_limit: int = PAGE_LIMIT
    allow_insecure_local: bool = False
    allow_writes: bool = False
    evidence: str = "redacted"
    seed: int | None = None
    examples: int | None = None

    @classmethod
    def pick(cls, values: dict[str, Any], **overrides: Any) -> TargetOptions:
        """The options among ``values`` (a command's parameters), None meaning "the default"."""
        chosen = {**values, **overrides}
        given = {f.name: chosen[f.name] for f in fields(cls) if chosen.get(f.name) is not None}
        for name in ("export", "csv_map"):
            if name in given:
                given[name] = tuple(Path(p) for p in given[name])
        return cls(**given)

    def problems(self) -> list[Problem]:
        found = []
        if bool(self.export) == bool(self.api):
            found.append(Problem("give either --export or --api (one target per run)"))
        if self.evidence not in EVIDENCE_MODES:
            found.append(Problem(f"--evidence must be 'redacted' or 'full', not '{self.evidence}'"))
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and low <= value <= high):
                unit = f" {UNITS[name]}" if UNITS[name] else ""
                found.append(Problem(f"--{name.replace('_', '-')} must be between {low:g} and {high:g}{unit}, "
                                     f"not {value}"))
        if self.csv_map and not self.export:
            found.append(Problem("--csv-map describes CSV export files: give --export too"))
        if self.key and not self.cert:
            found.append(Problem("--key is the private key of a client certificate: give --cert too"))
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigurationError(problems)

    def client_config(self, base_url: str | None = None) -> Any:
        from harness.targets.http_client import ClientConfig, secret_from_env  # noqa: PLC0415 - requests, for APIs

        return ClientConfig(
            base_url=base_url or self.api or "", token=secret_from_env(self.token_env),
            oauth_token_url=self.oauth_token_url, client_id=self.client_id,
            client_secret=secret_from_env(self.client_secret_env), scope=self.scope, cert=self.cert, key=self.key,
            ca=self.ca, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            page_limit=self.page_limit, allow_insecure_local=self.allow_insecure_local)

    def client(self, base_url: str | None = None) -> Any:
        """An API client with its evidence store (redacted unless ``evidence`` is full)."""
        from harness.evidence import EvidenceStore, Redactor  # noqa: PLC0415
        from harness.targets.http_client import FhirClient  # noqa: PLC0415

        return FhirClient(self.client_config(base_url), EvidenceStore(Redactor(full=self.evidence == "full")))

    def build(self) -> Any:
        """The export or API target these options name, after checking them."""
        self.check()
        if self.api:
            from harness.targets.api import ApiTarget  # noqa: PLC0415

            return ApiTarget(self.client(), allow_writes=self.allow_writes,
                             property_overrides={"seed": self.seed, "examples": self.examples})
        from harness.targets.export import ExportTarget  # noqa: PLC0415

        return ExportTarget(list(self.export), csv_maps=self.csv_map)
