"""Throughput and memory of an export run: the harness against the naive approach.

Generates the reference supplier's export (NDJSON, 100,000+ resources by default), then in
separate child processes (so peak memory is each one's own):

- harness: the ``asl-dscr-core`` suite through the engine (compiled rules, dispatch by type);
- the same with the validator's accept path off (``CARE_ASSURE_SCHEMA_ACCEPT=0``: the Python walk
  alone), to compare the two ways of validating in one run;
- the same with the rules' screens off (``CARE_ASSURE_SCREENS=0``: every rule checks every resource);
- the same one resource at a time (``CARE_ASSURE_BATCH=1``: each resource through every rule before
  the next, instead of batches of one type taken stage by stage);
- naive: per resource, fhir.resources (R4B) model validation plus fhirpathpy evaluated for
  every rule's expressions, on a sample of the same export (it is too slow for all of it);
- harness at a fifth of the size, to show that memory does not grow with the export;
- bare parsing: every line read and parsed with orjson, nothing checked (the floor);
- with ``--baseline DIR``: the same harness child from another checkout (say the commit before a
  change, made with ``git worktree add``), on the same export, back to back.

Prints resources per second for each, the ratios, and peak resident memory.

    python benchmarks/export_throughput.py [--residents 6000] [--naive-sample 5000] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WALK_ONLY = "CARE_ASSURE_SCHEMA_ACCEPT"  # harness.fhir.accept.ENV_SWITCH (not imported: a baseline may lack it)
NO_SCREENS = "CARE_ASSURE_SCREENS"  # harness.engine.SCREENS_SWITCH
BATCH = "CARE_ASSURE_BATCH"  # harness.engine.BATCH_SWITCH
sys.path.insert(0, str(ROOT))


def _peak_mib() -> float:
    """The largest resident set of this process or any worker it waited for."""
    return max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def child_harness(export: Path, jobs: int = 1) -> dict[str, Any]:
    from harness.runner import assess
    from harness.targets.export import ExportTarget

    start = time.perf_counter()
    more = {"jobs": jobs} if jobs != 1 else {}  # a baseline checkout may predate --jobs
    a = assess("asl-dscr-core", ExportTarget([export]), as_of=dt.date(2026, 11, 1),
               attestations=ROOT / "fixtures" / "attestations" / "attestations.yaml", **more)
    seconds = time.perf_counter() - start
    return {"resources": a.result.resources_read, "seconds": seconds, "peak_mib": _peak_mib(),
            "decision": a.decision.outcome, "failures": a.report["summary"]["failures"]}


def child_naive(export: Path, sample: int) -> dict[str, Any]:
    import orjson
    from fhir.resources.R4B import get_fhir_model_class
    from fhirpathpy import compile as fp_compile
    from fhirpathpy.models import models

    from harness.suites import Catalogue

    catalogue = Catalogue.default()
    rules = catalogue.rules_for(catalogue.suite("asl-dscr-core"))
    exprs: dict[str, list[Any]] = {}
    for rule in rules:
        for text in (rule.where, rule.select, rule.check.get("expression"), rule.check.get("key"),
                     rule.check.get("via")):
            if text:
                compiled = fp_compile(text, models["r4"])
                for rtype in rule.resources:
                    exprs.setdefault(rtype, []).append(compiled)
    everything = exprs.pop("*", [])
    lines: list[bytes] = []
    per_file = max(1, sample // len(list(export.glob("*.ndjson"))))
    for f in sorted(export.glob("*.ndjson")):
        with f.open("rb") as fh:
            for i, line in enumerate(fh):
                if i >= per_file:
                    break
                lines.append(line)
    start = time.perf_counter()
    invalid = 0
    for line in lines:
        res = orjson.loads(line)
        try:
            get_fhir_model_class(res["resourceType"]).model_validate(res)
        except ValueError:
            invalid += 1
        for fn in (*exprs.get(res["resourceType"], ()), *everything):
            fn(res, None)
    seconds = time.perf_counter() - start
    return {"resources": len(lines), "seconds": seconds, "peak_mib": _peak_mib(), "invalid": invalid}


def child_parse(export: Path) -> dict[str, Any]:
    import orjson

    start = time.perf_counter()
    n = 0
    for f in sorted(export.glob("*.ndjson")):
        with f.open("rb") as fh:
            for line in fh:
                if line.strip():
                    orjson.loads(line)
                    n += 1
    return {"resources": n, "seconds": time.perf_counter() - start, "peak_mib": _peak_mib()}


def _child(args: list[str], root: Path = ROOT, env: dict[str, str] | None = None) -> dict[str, Any]:
    script = root / "benchmarks" / "export_throughput.py"
    out = subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, text=True,
                         cwd=root, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _best(args: list[str], repeat: int, root: Path = ROOT,
          env: dict[str, str] | None = None) -> tuple[dict[str, Any], list[float]]:
    runs = [_child(args, root, env) for _ in range(repeat)]
    return min(runs, key=lambda r: r["seconds"]), [r["resources"] / r["seconds"] for r in runs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=6000)
    parser.add_argument("--naive-sample", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="harness runs on the full export (best is shown)")
    parser.add_argument("--child", choices=["harness", "naive", "parse"])
    parser.add_argument("--export", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="(child) worker processes for the harness")
    parser.add_argument("--baseline", type=Path, help="another checkout whose harness to measure on the same export")
    args = parser.parse_args()
    if args.child == "parse":
        print(json.dumps(child_parse(args.export)))
        return 0
    if args.child == "harness":
        print(json.dumps(child_harness(args.export, args.jobs)))
        return 0
    if args.child == "naive":
        print(json.dumps(child_naive(args.export, args.naive_sample)))
        return 0

    from fixtures.export_generator import Generator, write_ndjson

    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        counts = write_ndjson(Generator(args.residents, seed=7).resources(), big)
        write_ndjson(Generator(max(1, args.residents // 5), seed=7).resources(), small)
        size_mb = sum(f.stat().st_size for f in big.glob("*")) / 1e6
        print(f"export: {sum(counts.values()):,} resources, {size_mb:.1f} MB NDJSON, {len(counts)} files")
        harness_args = ["--child", "harness", "--export", str(big)]
        h, spread = _best(harness_args, args.repeat)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        every = _best([*harness_args, "--jobs", str(cores)], args.repeat)[0] if cores > 1 else None
        walk = _best(harness_args, args.repeat, env={WALK_ONLY: "0"})[0]
        unscreened = _best(harness_args, args.repeat, env={NO_SCREENS: "0"})[0]
        single = _best(harness_args, args.repeat, env={BATCH: "1"})[0]
        b = _best(harness_args, args.repeat, args.baseline.resolve())[0] if args.baseline else None
        p, _ = _best(["--child", "parse", "--export", str(big)], args.repeat)
        s = _child(["--child", "harness", "--export", str(small)])
        n = _child(["--child", "naive", "--export", str(big), "--naive-sample", str(args.naive_sample)])

    def row(label: str, r: dict[str, Any]) -> float:
        rate: float = r["resources"] / r["seconds"]
        print(f"{label:<34}{r['resources']:>10,}{r['seconds']:>9.2f}{rate:>10,.0f}{r['peak_mib']:>10.0f}")
        return rate

    print(f"{'approach':<34}{'resources':>10}{'seconds':>9}{'res/s':>10}{'peak MiB':>10}")
    h_rate = row("harness (asl-dscr-core), best", h)
    if every is not None:
        e_rate = row(f"harness, --jobs {cores} (every core)", every)
    w_rate = row("harness, walk only (no accept path)", walk)
    u_rate = row("harness, no screens", unscreened)
    o_rate = row("harness, one resource at a time", single)
    row("harness, 1/5 size", s)
    n_rate = row("naive (fhir.resources+fhirpathpy)", n)
    p_rate = row("bare orjson parsing, best", p)
    if b is not None:
        b_rate = row("baseline harness, best", b)
        print(f"this harness vs the baseline: {h_rate / b_rate:.2f}x the throughput in one process"
              + (f", {e_rate / b_rate:.2f}x over every core" if every is not None else "") + f" ({args.baseline})")
    print(f"harness runs: {', '.join(f'{r:,.0f}' for r in spread)} resources/s")
    same = (walk["decision"], walk["failures"]) == (h["decision"], h["failures"])
    print(f"accept path: {h_rate / w_rate:.2f}x the walk alone; same decision and findings: {same}")
    same = (unscreened["decision"], unscreened["failures"]) == (h["decision"], h["failures"])
    print(f"screens: {h_rate / u_rate:.2f}x every rule checking every resource; same decision and findings: {same}")
    same = (single["decision"], single["failures"]) == (h["decision"], h["failures"])
    print(f"batches: {h_rate / o_rate:.2f}x one resource at a time; same decision and findings: {same}")
    print(f"speed-up over naive: {h_rate / n_rate:.1f}x; parsing alone is {p_rate / h_rate:.1f}x faster than "
          f"the harness; harness decision on the clean export: {h['decision']} ({h['failures']} findings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
