"""pytest plugin: one test item per rule in force, for a supplier's CI.

Registered through the ``pytest11`` entry point; inert unless a suite is configured
(``--assure-suite`` or ``assure_suite`` in the ini file). The target is assessed once per
session — under pytest-xdist once, by the controller, whose canonical report the workers
read — and each item reports its rule's outcome: ``error`` always fails, never passes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.results import Level

ASSURE_KEY = pytest.StashKey[dict[str, Any]]()
LEVELS = {"must": {"MUST"}, "should": {"MUST", "SHOULD"}, "may": {"MUST", "SHOULD", "MAY"}}
SHOWN_FINDINGS = 20
_OPTIONS = ("suite", "export", "csv_map", "api", "token_env", "oauth_token_url", "client_id", "client_secret_env",
            "scope", "cert", "key", "ca", "allow_insecure_local", "connect_timeout", "read_timeout", "page_limit",
            "evidence", "as_of", "level", "report", "extra_packs", "package_dir", "attestations")
_NUMBERS = {"connect_timeout": float, "read_timeout": float, "page_limit": int}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("care-assure", "DSCR conformance with care-assure")
    group.addoption("--assure-suite", help="suite id or suite file: turns the plugin on")
    group.addoption("--assure-export", action="append", help="export file, directory or zip (repeatable)")
    group.addoption("--assure-csv-map", action="append", help="CSV data dictionary (YAML) for CSV exports (repeatable)")
    group.addoption("--assure-api", help="base URL of the FHIR API under test")
    group.addoption("--assure-token-env", help="environment variable holding the API's bearer token")
    group.addoption("--assure-oauth-token-url", help="OAuth2 token endpoint (client credentials)")
    group.addoption("--assure-client-id", help="OAuth2 client id")
    group.addoption("--assure-client-secret-env", help="environment variable holding the OAuth2 client secret")
    group.addoption("--assure-scope", help="OAuth2 scopes")
    group.addoption("--assure-cert", help="client certificate for mutual TLS")
    group.addoption("--assure-key", help="client key for mutual TLS")
    group.addoption("--assure-ca", help="CA bundle to trust")
    group.addoption("--assure-allow-insecure-local", action="store_true", default=None,
                    help="allow http:// and loopback/private addresses (local sandboxes)")
    group.addoption("--assure-connect-timeout", help="seconds to wait for a connection (default 5)")
    group.addoption("--assure-read-timeout", help="seconds to wait for each response (default 30)")
    group.addoption("--assure-page-limit", help="most search pages read per resource type (default 100)")
    group.addoption("--assure-evidence", choices=["redacted", "full"],
                    help="keep patient data in the stored exchanges (full) or not (redacted, the default)")
    group.addoption("--assure-as-of", help="date the rules are judged on (YYYY-MM-DD), default today")
    group.addoption("--assure-level", choices=sorted(LEVELS),
                    help="also fail the build on rules of these levels (default: exactly the suite's policy)")
    group.addoption("--assure-report", help="directory for the canonical report.json")
    group.addoption("--assure-extra-packs", action="append", help="extra rule-pack directory (repeatable)")
    group.addoption("--assure-package-dir", help="FHIR package directory for value sets")
    group.addoption("--assure-attestations", help="answers to attestation rules (default $CARE_ASSURE_ATTESTATIONS)")
    for name in _OPTIONS:
        kind = "linelist" if name in ("export", "csv_map", "extra_packs") else \
            "bool" if name == "allow_insecure_local" \
            else "string"
        parser.addini(f"assure_{name}", f"care-assure: default for --assure-{name.replace('_', '-')}",
                      type=kind)  # type: ignore[arg-type]


def _opt(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"assure_{name}")
    if value in (None, []):
        value = config.getini(f"assure_{name}")
    return value or None


def _active(config: pytest.Config) -> bool:
    return _opt(config, "suite") is not None


def pytest_configure(config: pytest.Config) -> None:
    for level in ("must", "should", "may"):
        config.addinivalue_line("markers", f"assure_{level}: care-assure rule at level {level.upper()}")
    if not _active(config):
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "assure_report" in workerinput:
        config.stash[ASSURE_KEY] = json.loads(Path(workerinput["assure_report"]).read_text(encoding="utf-8"))
        return
    if config.option.collectonly:  # list the items without reading the target or running anything
        config.stash[ASSURE_KEY] = _planned(config)
        return
    config.stash[ASSURE_KEY] = _assess(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(config), "care-assure-xdist")


class _XdistController:
    """Hands the controller's report to each worker, so the target is read once."""

    def __init__(self, config: pytest.Config) -> None:
        handle, name = tempfile.mkstemp(prefix="care-assure-", suffix=".json")
        os.close(handle)
        self.path = Path(name)
        self.path.write_text(json.dumps(config.stash[ASSURE_KEY]), encoding="utf-8")

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["assure_report"] = str(self.path)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.path.unlink(missing_ok=True)


def _target(config: pytest.Config) -> Any:
    """The target, from the same options model as `care-assure run` (checks and client included)."""
    from harness.errors import ConfigurationError  # noqa: PLC0415 - keep plugin import light
    from harness.targets.options import TargetOptions  # noqa: PLC0415

    values: dict[str, Any] = {name: _opt(config, name) for name in _OPTIONS}
    for name, kind in _NUMBERS.items():
        if values[name] is not None:
            try:
                values[name] = kind(values[name])
            except ValueError:
                raise pytest.UsageError(f"care-assure: --assure-{name.replace('_', '-')} '{values[name]}' is not "
                                        "a number") from None
    try:
        return TargetOptions.pick(values, allow_insecure_local=bool(values["allow_insecure_local"])).build()
    except ConfigurationError as exc:
        raise pytest.UsageError("care-assure: " + "; ".join(str(p).replace("--", "--assure-")
                                                           for p in exc.problems)) from None


def _as_of(config: pytest.Config) -> dt.date | None:
    as_of = _opt(config, "as_of")
    try:
        return dt.date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise pytest.UsageError(f"care-assure: --assure-as-of '{as_of}' is not YYYY-MM-DD") from None


def _planned(config: pytest.Config) -> dict[str, Any]:
    """The rules the suite has in force for this target, shaped like a report's, for --collect-only."""
    from harness.engine import READ_RULE  # noqa: PLC0415
    from harness.errors import ConfigurationError  # noqa: PLC0415
    from harness.suites import Catalogue, in_force  # noqa: PLC0415

    kind = "api" if _opt(config, "api") else "export"
    try:
        catalogue = Catalogue.default([Path(p) for p in _opt(config, "extra_packs") or []])
        suite = catalogue.suite(_opt(config, "suite"))
        rules = [READ_RULE, *in_force(catalogue.rules_for(suite), _as_of(config) or dt.date.today(), kind)]
    except ConfigurationError as exc:
        raise pytest.UsageError("care-assure:\n" + "\n".join(str(p) for p in exc.problems)) from None
    return {"run": {"suite": {"id": suite.id, "version": suite.version}}, "findings": [],
            "decision": {"outcome": "not-run", "reasons": [], "warnings": []},
            "rules": [{"id": r.id, "title": r.title, "level": r.level.value, "pack": r.pack,
                       "standard": f"{r.standard.id} {r.standard.version}", "clause": r.clause,
                       "outcome": "not-run", "message": "", "remediation": r.remediation,
                       "counts": {"failed": 0, "errors": 0}} for r in rules]}


def _assess(config: pytest.Config) -> dict[str, Any]:
    from harness.errors import ConfigurationError  # noqa: PLC0415
    from harness.reports.canonical import dumps  # noqa: PLC0415
    from harness.runner import assess  # noqa: PLC0415

    day = _as_of(config)
    package_dir = _opt(config, "package_dir")
    attestations = _opt(config, "attestations")
    try:
        assessment = assess(_opt(config, "suite"), _target(config), as_of=day,
                            extra_pack_dirs=[Path(p) for p in _opt(config, "extra_packs") or []],
                            package_dir=Path(package_dir) if package_dir else None,
                            attestations=Path(attestations) if attestations else None)
    except ConfigurationError as exc:
        raise pytest.UsageError("care-assure:\n" + "\n".join(str(p) for p in exc.problems)) from None
    report_dir = _opt(config, "report")
    if report_dir:
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        (Path(report_dir) / "report.json").write_bytes(dumps(assessment.report))
        if assessment.evidence is not None:
            assessment.evidence.write(Path(report_dir) / "evidence")
    return assessment.report


def _marker(prefix: str, text: str) -> str:
    return f"{prefix}_{re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')}"


class AssureCollector(pytest.Collector):
    """The suite, as a collector of one item per rule in force."""

    def collect(self) -> Iterator[pytest.Item]:
        report = self.config.stash[ASSURE_KEY]
        for rule in report["rules"]:
            item = AssureItem.from_parent(self, name=rule["id"], rule=rule)
            markers = [f"assure_{rule['level'].lower()}", _marker("assure_pack", rule["pack"]),
                       _marker("assure_std", rule["standard"].split(" ")[0] + " " + rule["standard"])]
            for name in markers[1:]:
                self.config.addinivalue_line("markers", f"{name}: care-assure pack or standard")
            for name in markers:
                item.add_marker(name)
            yield item


class AssureFailure(Exception):
    """A rule not met (or not evaluable): rendered as findings, not as a traceback."""


class AssureItem(pytest.Item):
    def __init__(self, *, rule: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.user_properties.extend([
            ("rule_id", rule["id"]), ("title", rule["title"]), ("level", rule["level"]),
            ("standard", rule["standard"]), ("clause", rule["clause"]), ("pack", rule["pack"]),
            ("outcome", rule["outcome"]),
        ])

    def runtest(self) -> None:
        rule = self.rule
        outcome, message = rule["outcome"], rule["message"] or rule["title"]
        if outcome == "not-run":
            pytest.skip("listed only (--collect-only): the target was not read")
        # the suite's own policy decides, as it does the report's decision; --assure-level can only add
        decision = self.config.stash[ASSURE_KEY]["decision"]
        level = _opt(self.config, "level")
        blocking = any(r["rule"] == rule["id"] for r in decision["reasons"]) or (
            level is not None and rule["level"] in LEVELS[level])
        if outcome == "pass":
            return
        if outcome in ("not-applicable", "waived"):
            pytest.skip(f"{outcome}: {message}")
        if outcome == "error":
            raise AssureFailure(self._describe("could not be evaluated"))
        if not blocking:
            pytest.xfail(f"{rule['level']} rule not met (warning): {message}")
        raise AssureFailure(self._describe("not met" if outcome == "fail" else "awaiting attestation"))

    def _describe(self, what: str) -> str:
        rule = self.rule
        findings = [f for f in self.config.stash[ASSURE_KEY]["findings"] if f["rule"] == rule["id"]]
        lines = [f"{rule['id']} ({rule['level']}) {what}: {rule['title']}",
                 f"  {rule['standard']} — {rule['clause']}", f"  {rule['message'] or ''}".rstrip()]
        for f in findings[:SHOWN_FINDINGS]:
            subject = f"{f['resource_type'] or ''}/{f['resource_id'] or ''}".strip("/")
            where = f" at {f['location']}" if f["location"] else ""
            path = f" {f['path']}" if f["path"] else ""
            lines.append(f"  - {subject}{where}{path}: {f['message']}")
        counts = rule["counts"]
        hidden = counts["failed"] + counts["errors"] - min(len(findings), SHOWN_FINDINGS)
        if hidden > 0:
            lines.append(f"  … and {hidden} more")
        lines.append(f"  Remediation: {rule['remediation']}")
        return "\n".join(line for line in lines if line)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, AssureFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return self.path, None, f"{self.rule['id']}: {self.rule['title']}"


@pytest.hookimpl(tryfirst=True)  # before pytest's own -k / -m selection, so that applies to our items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _active(config) or ASSURE_KEY not in config.stash:
        return
    suite = config.stash[ASSURE_KEY]["run"]["suite"]["id"]
    collector = AssureCollector.from_parent(session, name=f"care-assure[{suite}]", nodeid=f"care-assure[{suite}]")
    items.extend(collector.collect())


@pytest.fixture(scope="session")
def assure_report(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The canonical report of this session's run (a dict, as report.json)."""
    if ASSURE_KEY not in request.config.stash:
        pytest.skip("care-assure is not configured (no --assure-suite)")
    return request.config.stash[ASSURE_KEY]


@pytest.fixture(scope="session")
def assure_result(assure_report: dict[str, Any]) -> Any:
    """The run result (harness.results.RunResult) of this session's run."""
    from harness.reports.load import run_result_from_report  # noqa: PLC0415
    return run_result_from_report(assure_report)[0]


@pytest.fixture(scope="session")
def assure_target(request: pytest.FixtureRequest) -> Any:
    """The target under test (an ExportTarget or an ApiTarget), for the supplier's own checks."""
    if not _active(request.config):
        pytest.skip("care-assure is not configured (no --assure-suite)")
    return _target(request.config)


@pytest.fixture(scope="session")
def assure_client(assure_target: Any) -> Any:
    """The API client (with redacted evidence capture) when testing an API."""
    client = getattr(assure_target, "client", None)
    if client is None:
        pytest.skip("no --assure-api given: there is no API client")
    return client


__all__ = ["AssureItem", "Level"]
