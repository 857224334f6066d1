"""Throughput and memory of an export run: the harness against the naive approach.

Generates the reference supplier's export (NDJSON, 100,000+ resources by default), then in
separate child processes (so peak memory is each one's own):

- harness: the ``asl-dscr-core`` suite through the engine (compiled rules, dispatch by type);
- naive: per resource, fhir.resources (R4B) model validation plus fhirpathpy evaluated for
  every rule's expressions, on a sample of the same export (it is too slow for all of it);
- harness at a fifth of the size, to show that memory does not grow with the export.

Prints resources per second for both, the ratio, and peak resident memory.

    python benchmarks/export_throughput.py [--residents 6000] [--naive-sample 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_harness(export: Path) -> dict[str, Any]:
    from harness.runner import assess
    from harness.targets.export import ExportTarget

    start = time.perf_counter()
    a = assess("asl-dscr-core", ExportTarget([export]), as_of=dt.date(2026, 11, 1),
               attestations=ROOT / "fixtures" / "attestations" / "attestations.yaml")
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


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=6000)
    parser.add_argument("--naive-sample", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="harness runs on the full export (best is shown)")
    parser.add_argument("--child", choices=["harness", "naive"])
    parser.add_argument("--export", type=Path)
    args = parser.parse_args()
    if args.child == "harness":
        print(json.dumps(child_harness(args.export)))
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
        runs = [_child(["--child", "harness", "--export", str(big)]) for _ in range(args.repeat)]
        h = min(runs, key=lambda r: r["seconds"])
        spread = [r["resources"] / r["seconds"] for r in runs]
        s = _child(["--child", "harness", "--export", str(small)])
        n = _child(["--child", "naive", "--export", str(big), "--naive-sample", str(args.naive_sample)])
    h_rate = h["resources"] / h["seconds"]
    n_rate = n["resources"] / n["seconds"]
    s_rate = s["resources"] / s["seconds"]
    print(f"{'approach':<34}{'resources':>10}{'seconds':>9}{'res/s':>10}{'peak MiB':>10}")
    print(f"{'harness (asl-dscr-core), best':<34}{h['resources']:>10,}{h['seconds']:>9.2f}{h_rate:>10,.0f}"
          f"{h['peak_mib']:>10.0f}")
    print(f"{'harness, 1/5 size':<34}{s['resources']:>10,}{s['seconds']:>9.2f}{s_rate:>10,.0f}{s['peak_mib']:>10.0f}")
    print(f"{'naive (fhir.resources+fhirpathpy)':<34}{n['resources']:>10,}{n['seconds']:>9.2f}{n_rate:>10,.0f}"
          f"{n['peak_mib']:>10.0f}")
    print(f"harness runs: {', '.join(f'{r:,.0f}' for r in spread)} resources/s")
    print(f"speed-up: {h_rate / n_rate:.1f}x; harness decision on the clean export: {h['decision']} "
          f"({h['failures']} findings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
