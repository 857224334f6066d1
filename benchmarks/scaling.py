"""Scaling on one machine: resources per second for ``--jobs 1, 2, …, cores``, peak memory, import time.

Generates the reference supplier's export (NDJSON) once, then runs ``care-assure run
asl-dscr-core --jobs N`` on it in a child process for each N (best of ``--repeat`` runs: the
machine is shared and noisy), checks that every N gives the same report (volatile fields
aside), and prints a table with the speed-up over ``--jobs 1``. Also measures interpreter start
to the CLI being imported (``import harness.cli``), best of five.

    python benchmarks/scaling.py [--residents 6000] [--repeat 3] [--spark]
    python benchmarks/scaling.py --rss 100000,1000000,10000000   # peak RSS of --jobs 1 by export size
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _run(export: Path, out: Path, jobs: int, spark: bool = False) -> tuple[float, float, dict[str, object]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    engine = ["--engine", "spark", "--spark-master", f"local[{jobs}]"] if spark else ["--jobs", str(jobs)]
    subprocess.run([sys.executable, "-m", "harness", "run", "asl-dscr-core", "--export", str(export), "--out",
                    str(out), "--format", "json", "--as-of", "2026-11-01", "-q", *engine],
                   check=False, capture_output=True, env={**os.environ, "CARE_ASSURE_ATTESTATIONS": ""})
    seconds = time.perf_counter() - start
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report["run"] = {k: v for k, v in report["run"].items() if k not in ("id", "started", "finished")}
    return seconds, peak, report


def _peak_rss(sizes: list[int], tmp: Path) -> None:
    """Peak RSS of `run --jobs 1` on exports of each size (generated into ``tmp``, deleted after each)."""
    from fixtures.export_generator import Generator, write_ndjson

    print(f"{'resources':>12} {'MiB on disk':>12} {'seconds':>8} {'resources/s':>12} {'peak RSS MiB':>13}")
    for wanted in sizes:
        export = tmp / f"rss-{wanted}"
        counts = write_ndjson(Generator(max(1, round(wanted / 23.2)), seed=1).resources(), export)
        size = sum(p.stat().st_size for p in export.iterdir()) / 1024 / 1024
        start = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "harness", "run", "asl-dscr-core",
                               "--export", str(export), "--out", str(tmp / "rss-out"), "--format", "json",
                               "--as-of", "2026-11-01", "--jobs", "1", "-q"],
                              check=False, capture_output=True, text=True,
                              env={**os.environ, "CARE_ASSURE_ATTESTATIONS": ""})
        seconds = time.perf_counter() - start
        peak = int(done.stderr.strip().splitlines()[-1]) / 1024
        total = sum(counts.values())
        print(f"{total:>12,} {size:>12,.0f} {seconds:>8.0f} {total / seconds:>12,.0f} {peak:>13.0f}", flush=True)
        for p in export.iterdir():
            p.unlink()
        export.rmdir()


FIRST_READ = """
import sys, time
from harness.targets import export as readers
ndjson = readers.READERS[".ndjson"]
def timed(stream, name):
    items = ndjson(stream, name)
    for item in items:
        print(f"first-read {time.time()}", file=sys.stderr, flush=True)
        yield item
        yield from items
        return
readers.READERS[".ndjson"] = timed
from harness.cli import main
sys.argv = ["care-assure", *sys.argv[1:]]
main()
"""


def _first_read_seconds(export: Path, out: Path) -> float:
    """Interpreter start to the first resource read by `care-assure run` (best of five)."""
    best = float("inf")
    for _ in range(5):
        start = time.time()
        done = subprocess.run([sys.executable, "-c", FIRST_READ, "run", "asl-dscr-core", "--export", str(export),
                               "--out", str(out), "--format", "json", "--as-of", "2026-11-01", "-q", "--jobs", "1"],
                              check=False, capture_output=True, text=True,
                              env={**os.environ, "CARE_ASSURE_ATTESTATIONS": ""})
        stamps = [float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("first-read ")]
        if stamps:
            best = min(best, stamps[0] - start)
    return best


def _import_seconds() -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import harness.cli"], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=6000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spark", action="store_true", help="also --engine spark on local[cores] (PySpark, Java)")
    parser.add_argument("--rss", default="", help="comma-separated export sizes (resources) for the peak-RSS table, "
                                                 "e.g. 100000,1000000,10000000 (needs /usr/bin/time)")
    args = parser.parse_args()
    if args.rss:
        with tempfile.TemporaryDirectory(prefix="care-assure-rss-") as tmp:
            _peak_rss([int(x) for x in args.rss.split(",")], Path(tmp))
        return 0
    from fixtures.export_generator import Generator, write_ndjson

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="care-assure-scaling-") as tmp:
        export = Path(tmp) / "export"
        counts = write_ndjson(Generator(args.residents, seed=1).resources(), export)
        resources = sum(counts.values())
        size = sum(p.stat().st_size for p in export.iterdir()) / 1024 / 1024
        print(f"export: {resources:,} resources, {size:.0f} MiB, {cores} core(s)")
        rows, reference = [], None
        runs = [(str(jobs), jobs, False) for jobs in range(1, cores + 1)]
        if args.spark:
            runs.append((f"spark local[{cores}]", cores, True))
        for name, jobs, spark in runs:
            best, peak, report = float("inf"), 0.0, {}
            for _ in range(args.repeat):
                seconds, peak_now, report = _run(export, Path(tmp) / f"out-{name}", jobs, spark)
                best, peak = min(best, seconds), max(peak, peak_now)
            if reference is None:
                reference = report
            same = report == reference
            rows.append((name, resources / best, peak, same))
        base = rows[0][1]
        print(f"{'jobs':>16} {'resources/s':>12} {'× jobs 1':>9} {'peak RSS MiB':>13} same report")
        for name, rate, peak, same in rows:
            print(f"{name:>16} {rate:>12,.0f} {rate / base:>9.2f} {peak:>13.0f} {'yes' if same else 'NO'}")
        print(f"import harness.cli: {_import_seconds():.2f} s (best of 5)")
        print(f"interpreter start to the first resource read: {_first_read_seconds(export, Path(tmp) / 'first'):.2f} s "
              "(best of 5)")
        return 0 if all(same for *_, same in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
