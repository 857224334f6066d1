"""Export round trips: generated datasets through a supplier's exporter must come back whole.

For each drawn dataset: write it as NDJSON to ``{input}``, run the supplier's command (which
imports it and exports to ``{output}``), read ``{output}`` back, and check that every
resource sent is there with every element (server-owned id/meta/text aside) and that the
export meets the suite's export rules. Failures shrink to a minimal dataset, kept on disk.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness import progress
from harness.properties.api import SERVER_OWNED, _subset
from harness.properties.strategies import datasets

Resource = dict[str, Any]


class RoundTripFailed(AssertionError):
    pass


@dataclass
class FuzzOutcome:
    examples_run: int
    message: str | None = None
    counterexample: Path | None = None


def _write(resources: list[Resource], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[bytes]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(orjson.dumps(r))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")


def check_round_trip(command: str, resources: list[Resource], work: Path, plan: Any, timeout: float) -> str | None:
    """Why one dataset did not survive the supplier's export, or None."""
    from harness.engine import run_plan  # noqa: PLC0415
    from harness.targets.base import Located  # noqa: PLC0415
    from harness.targets.export import ExportTarget  # noqa: PLC0415

    inbox, outbox = work / "input", work / "output"
    for folder in (inbox, outbox):
        shutil.rmtree(folder, ignore_errors=True)
    _write(resources, inbox)
    outbox.mkdir(parents=True)
    argv = [part.format(input=inbox, output=outbox) for part in shlex.split(command)]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RoundTripFailed(f"the export command could not run: {exc}") from None
    if done.returncode != 0:
        return f"the export command exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}"
    target = ExportTarget([outbox])
    back: dict[tuple[str, str], Resource] = {}
    for item in target.items():
        if isinstance(item, Located):
            back[(item.resource["resourceType"], str(item.resource.get("id")))] = item.resource
    for sent in resources:
        got = back.get((sent["resourceType"], sent["id"]))
        if got is None:
            return f"{sent['resourceType']}/{sent['id']} is missing from the export"
        lost = _subset({k: v for k, v in sent.items() if k not in SERVER_OWNED}, got, sent["resourceType"])
        if lost:
            return f"{sent['resourceType']}/{sent['id']}: {lost} in the export"
    result = run_plan(plan, target)
    answered_elsewhere = {cr.rule.id for cr in plan.rules if cr.rule.kind == "attestation"}  # not about data
    failing = [r.rule for r in result.rules if not r.outcome.counts_as_met and r.rule not in answered_elsewhere]
    return f"the export does not meet {', '.join(failing)}" if failing else None


def fuzz_export(command: str, *, suite: str = "asl-dscr-core", examples: int = 10, seed: int = 0,
                keep: Path | None = None, timeout: float = 60.0, shrink: bool = True) -> FuzzOutcome:
    from hypothesis import HealthCheck, Phase, given, settings  # noqa: PLC0415
    from hypothesis import seed as fixed_seed  # noqa: PLC0415

    from harness.plan import build_plan  # noqa: PLC0415
    from harness.suites import Catalogue  # noqa: PLC0415

    catalogue = Catalogue.default()
    plan = build_plan(catalogue.suite(suite), catalogue, dt.date.today(), "export")  # compiled once
    outcome = FuzzOutcome(0)
    last: list[Any] = [None]
    with tempfile.TemporaryDirectory(prefix="care-assure-fuzz-") as tmp:
        work = Path(tmp)

        phases = list(Phase) if shrink else [p for p in Phase if p not in (Phase.shrink, Phase.explain)]

        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                  print_blob=False, phases=phases)
        @fixed_seed(seed)
        @given(datasets(max_residents=3))
        def search(resources: list[Resource]) -> None:
            outcome.examples_run += 1
            job.advance()
            last[0] = resources
            message = check_round_trip(command, resources, work, plan, timeout)
            if message:
                raise RoundTripFailed(message)

        with progress.task("fuzz-export round trips", total=examples, unit="datasets") as job:
            try:
                search()
            except RoundTripFailed as exc:
                outcome.message = str(exc)
                job.note = "failed; shrinking" if shrink else "failed"
            if keep is not None and last[0] is not None:
                _write(last[0], keep)
                outcome.counterexample = keep
    return outcome
