"""One call from a suite name and a target to a decision and its report; front ends use this."""

from __future__ import annotations

import datetime as dt
import importlib
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.attestations import Attestations, from_environment_or, kept_name
from harness.decision import Decision, decide
from harness.engine import Target, run_plan
from harness.errors import ConfigurationError
from harness.fhir.accept import sized_for
from harness.plan import Plan, build_plan
from harness.reports.canonical import build_report, dumps
from harness.results import RunResult
from harness.stopping import Stop
from harness.suites import Catalogue, Suite
from harness.targets.export import ExportTarget
from harness.terminology import Terminology

if TYPE_CHECKING:
    from harness.evidence import EvidenceStore


def _writer(module: str, name: str) -> Callable[[dict[str, Any]], bytes]:
    """A report writer loaded when first asked for (Jinja2, openpyxl, XML: only for the formats wanted)."""
    def render(report: dict[str, Any]) -> bytes:
        found: Callable[[dict[str, Any]], bytes] = getattr(importlib.import_module(module), name)
        return found(report)
    return render


FORMATS: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {
    "json": ("report.json", dumps),
    "junit": ("junit.xml", _writer("harness.reports.junit", "render_junit")),
    "sarif": ("report.sarif", _writer("harness.reports.sarif", "render_sarif")),
    "csv": ("requirements.csv", _writer("harness.reports.csv_report", "render_csv")),
    "html": ("report.html", _writer("harness.reports.html", "render_html")),
    "xlsx": ("requirements.xlsx", _writer("harness.reports.xlsx", "render_xlsx")),
}


@dataclass
class Assessment:
    suite: Suite
    result: RunResult
    decision: Decision
    report: dict[str, Any]
    evidence: EvidenceStore | None = None
    attestations: Attestations | None = None


def _workers(jobs: int, target: Target) -> int:
    """How many processes: exports only (an API is read in order, in one process); 0 means "as the machine"."""
    if not isinstance(target, ExportTarget) or jobs == 1:
        return 1
    if jobs == 0:
        from harness.parallel import default_jobs  # noqa: PLC0415

        return default_jobs() if target.total_bytes() >= PARALLEL_MIN_BYTES else 1
    return jobs


def parse_formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigurationError(f"unknown report format(s): {', '.join(unknown) or '(none)'}; "
                                 f"choose from {', '.join(FORMATS)}")
    return formats


def plan_for(suite_ref: str, target_kind: str, *, as_of: dt.date, extra_pack_dirs: Iterable[Path] = (),
             package_dir: Path | None = None, forecast_until: dt.date | None = None,
             answers: Attestations | None = None, target: Target | None = None) -> Plan:
    """The compiled plan for a suite on a kind of target: the same inputs give the same plan in any process."""
    catalogue = Catalogue.default(extra_pack_dirs)
    suite = catalogue.suite(suite_ref)
    terminology = Terminology.from_directory(package_dir) if package_dir else None
    return build_plan(suite, catalogue, as_of, target_kind, terminology=terminology, target=target,
                      forecast_until=forecast_until, attestations=answers)


# From this size an export is checked over every core by default (--jobs 0). --jobs 2 against --jobs 1 on the
# 2-core CI machine (benchmarks/scaling.py): 1.05x at 0.5 MB, 1.12x at 2 MB, 1.20x at 4 MB, 1.17x at 8 MB,
# 1.21x at 16 MB, 1.32x at 80 MB; below 8 MB the gain is small beside a second and third process's memory.
PARALLEL_MIN_BYTES = 8 * 1024 * 1024


def assess(suite_ref: str, target: Target, *, as_of: dt.date | None = None,
           extra_pack_dirs: Iterable[Path] = (), package_dir: Path | None = None,
           progress: Callable[[int], None] | None = None, forecast_until: dt.date | None = None,
           attestations: Path | None = None, stop: Stop | None = None, jobs: int = 1) -> Assessment:
    """Run a suite on a target. Attestations come from ``attestations`` or $CARE_ASSURE_ATTESTATIONS.

    ``stop`` (a deadline, signals) may end the run early: the report is then partial and the
    decision "could-not-evaluate". ``jobs`` > 1 splits an export over that many worker
    processes (the report is the same); 0 means one per core for an export of 8 MB or more.
    """
    as_of = as_of or dt.date.today()
    extra_pack_dirs = list(extra_pack_dirs)
    answers = from_environment_or(attestations)
    plan = plan_for(suite_ref, target.kind, as_of=as_of, extra_pack_dirs=extra_pack_dirs, package_dir=package_dir,
                    forecast_until=forecast_until, answers=answers, target=target)
    suite = plan.suite
    started = dt.datetime.now(dt.UTC)
    client = getattr(target, "client", None)
    if stop is not None and client is not None:
        client.stop = stop  # requests stop waiting at the deadline too
    workers = _workers(jobs, target)
    spark = getattr(target, "engine", None) == "spark"
    if spark or workers > 1:
        from harness.parallel import PlanInputs, run_parallel  # noqa: PLC0415 - only for runs over processes

        inputs = PlanInputs(suite_ref, tuple(str(p) for p in extra_pack_dirs), str(package_dir) if package_dir
                            else None, as_of, answers.source if answers else None, forecast_until,
                            tuple(str(p) for p in getattr(target, "csv_maps", ())))
        if spark:
            from harness.spark_engine import SparkExport, run_spark  # noqa: PLC0415 - PySpark only for Spark runs

            assert isinstance(target, SparkExport)
            run = run_spark(plan, target, inputs)
        else:
            assert isinstance(target, ExportTarget)
            run = run_parallel(plan, target, inputs, workers, progress, stop)
        result = run.finish(target.inputs(), target.kind, suite.assessment == "self")
    else:
        size = target.total_bytes() if isinstance(target, ExportTarget) else 0
        with sized_for(size):
            result = run_plan(plan, target, progress, self_assessment=suite.assessment == "self", stop=stop)
    if answers is not None:
        result.inputs.extend(answers.inputs)
    decision = decide(result.rules, suite.policy, result.could_not_evaluate)
    store: EvidenceStore | None = getattr(getattr(target, "client", None), "evidence", None)
    summary = None
    if store is not None:
        summary = store.summary()
        if store.redactor.full:
            summary["statement"] = ("Evidence was kept in full at the tester's request: it may hold patient data "
                                    "and must be handled as such.")
    report = build_report(result, decision, title=suite.title, started=started,
                          finished=dt.datetime.now(dt.UTC), evidence=summary,
                          requests=[ex.url for ex in store.exchanges] if store else None,
                          forecast_until=forecast_until)
    return Assessment(suite, result, decision, report, store, answers)


def write_reports(assessment: Assessment, out_dir: Path, formats: list[str]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        name, render = FORMATS[fmt]
        path = out_dir / name
        path.write_bytes(render(assessment.report))
        written.append(path)
    if assessment.evidence is not None:
        assessment.evidence.write(out_dir / "evidence")
        written.append(out_dir / "evidence")
    if assessment.attestations is not None:  # the answers' evidence travels with the run (and its bundle)
        for shown, source in assessment.attestations.files:
            kept = out_dir / kept_name(shown)
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, kept)
        written.append(out_dir / "attestations")
    return written
