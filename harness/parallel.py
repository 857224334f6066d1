"""Every core on one machine: an export split into shards, each run by a worker process, merged.

NDJSON files are split into newline-aligned byte ranges, each knowing the line it starts on (so
findings keep their file:line); every other file (JSON, XML, CSV, zip) is one shard. Each worker
builds its own plan from the same inputs (suite, pack directories, as-of date, package
directory, attestations) — compiled checks never cross a process boundary — and sends back only
plain data: per-rule counts, findings and accumulator contents. Merging is associative and
commutative (see ``harness.engine.RuleState``), so the report is the same bytes as a one-process
run. A worker that fails becomes an ``error`` finding of the read rule naming its shard: a shard
is never silently lost. API targets stay in one process.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import gc
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.engine import RuleState, Run
from harness.fhir.accept import sized_for
from harness.plan import Plan
from harness.results import Issue, Location
from harness.targets.base import Located, ReadError
from harness.targets.export import ExportTarget
from harness.targets.readers import read_ndjson

NDJSON = (".ndjson", ".jsonl")
MIN_SHARD_BYTES = 4 * 1024 * 1024  # smaller pieces cost more in process traffic than they save
SHARDS_PER_JOB = 4  # more than one per worker, so one slow piece does not hold the others up


@dataclasses.dataclass(frozen=True, slots=True)
class Shard:
    path: str
    display: str
    start: int = 0  # byte range [start, end) of an NDJSON file; the whole file when end is None
    end: int | None = None
    first_line: int = 1
    size: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class PlanInputs:
    """What a worker needs to build the same plan as the parent (all picklable)."""

    suite_ref: str
    extra_pack_dirs: tuple[str, ...]
    package_dir: str | None
    as_of: dt.date
    attestations: str | None
    forecast_until: dt.date | None
    csv_maps: tuple[str, ...]


def shards_of(target: ExportTarget, jobs: int) -> list[Shard]:
    """The target's files as shards: big NDJSON files cut at newlines into about ``SHARDS_PER_JOB × jobs`` pieces."""
    files = target.files()
    total = sum(p.stat().st_size for p in files) or 1
    piece = max(MIN_SHARD_BYTES, total // (jobs * SHARDS_PER_JOB) + 1)
    out = []
    for path in files:
        size = path.stat().st_size
        name = target.display(path)
        if path.suffix.lower() not in NDJSON or size <= piece:
            out.append(Shard(str(path), name, size=size))
            continue
        out.extend(_ndjson_ranges(path, name, size, piece))
    return out


def _ndjson_ranges(path: Path, name: str, size: int, piece: int) -> Iterator[Shard]:
    """Newline-aligned ranges of about ``piece`` bytes, each with the number of the line it starts on."""
    start, line = 0, 1
    with path.open("rb") as f:
        while start < size:
            cut = min(size, start + piece)
            if cut < size:
                f.seek(cut)
                f.readline()  # to the end of the line the cut falls in
                cut = f.tell()
            f.seek(start)
            newlines = _count_newlines(f, cut - start)
            yield Shard(str(path), name, start, cut, line, cut - start)
            start, line = cut, line + newlines


def _count_newlines(f: Any, length: int) -> int:
    count = 0
    while length > 0:
        chunk = f.read(min(length, 1 << 20))
        if not chunk:
            break
        count += chunk.count(b"\n")
        length -= len(chunk)
    return count


class _Range:
    """Bytes [start, end) of a file, as a stream."""

    def __init__(self, path: str, start: int, end: int) -> None:
        self.f = Path(path).open("rb")  # noqa: SIM115 - closed by close()
        self.f.seek(start)
        self.left = end - start

    def readline(self, limit: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        line = self.f.readline(min(self.left, limit) if limit >= 0 else self.left)
        self.left -= len(line)
        return line

    def close(self) -> None:
        self.f.close()


def _items(shard: Shard, csv_maps: tuple[str, ...]) -> Iterator[Located | ReadError]:
    if shard.end is None and Path(shard.path).suffix.lower() in NDJSON:
        with Path(shard.path).open("rb") as whole:  # read as the parent names it: nothing to rename
            yield from read_ndjson(whole, shard.display)
        return
    if shard.end is None:
        target = ExportTarget([Path(shard.path)], csv_maps=[Path(p) for p in csv_maps])
        for item in target.items():
            yield _renamed(item, shard.display, Path(shard.path).name)
        return
    stream = _Range(shard.path, shard.start, shard.end)
    try:
        yield from read_ndjson(stream, shard.display, first_line=shard.first_line)  # type: ignore[arg-type]
    finally:
        stream.close()


def _renamed(item: Located | ReadError, display: str, own: str) -> Located | ReadError:
    """A single-file target names its file by its own name; the parent names it within its export."""
    loc = item.location
    if loc.file and (loc.file == own or loc.file.startswith(own + "!")):
        loc = dataclasses.replace(loc, file=display + loc.file[len(own):])
        return dataclasses.replace(item, location=loc)
    return item


_PLANS: dict[PlanInputs, Plan] = {}  # the parent's plan, inherited by forked workers (no second compile)


def plan_of(inputs: PlanInputs) -> Plan:
    """The plan these inputs name, built once per process (a forked worker inherits the parent's)."""
    found = _PLANS.get(inputs)
    if found is None:
        found = _PLANS[inputs] = _build(inputs)
    return found


def _build(inputs: PlanInputs) -> Plan:
    from harness.attestations import load_attestations  # noqa: PLC0415 - workers import the runner themselves
    from harness.runner import plan_for  # noqa: PLC0415

    return plan_for(inputs.suite_ref, "export", as_of=inputs.as_of,
                    extra_pack_dirs=[Path(p) for p in inputs.extra_pack_dirs],
                    package_dir=Path(inputs.package_dir) if inputs.package_dir else None,
                    forecast_until=inputs.forecast_until,
                    answers=load_attestations(Path(inputs.attestations)) if inputs.attestations else None)


def run_shard(inputs: PlanInputs, shard: Shard, share: int | None = None) -> dict[str, Any]:
    """In a worker: one shard through its own plan; plain data back. ``share``: the bytes this worker
    process can expect to read in all (it stays for many shards), which decides the accept path's warm-up."""
    return run_shards(inputs, [shard], share)


def run_shards(inputs: PlanInputs, shards: list[Shard], share: int | None = None) -> dict[str, Any]:
    """In a worker: several shards through one run of its own plan; plain data back."""
    run = Run(plan_of(inputs))
    with sized_for(share if share is not None else sum(s.size for s in shards)):
        for shard in shards:
            run.feed(_items(shard, inputs.csv_maps))
    return portable(run)


def grouped(shards: list[Shard], groups: int) -> list[list[Shard]]:
    """Shards dealt into at most ``groups`` lists of about equal bytes (largest first, each to the lightest)."""
    out: list[list[Shard]] = [[] for _ in range(max(1, min(groups, len(shards))))]
    weight = [0] * len(out)
    for shard in sorted(shards, key=lambda s: (-s.size, s.display, s.start)):
        lightest = weight.index(min(weight))
        out[lightest].append(shard)
        weight[lightest] += shard.size
    return [g for g in out if g]


_DATA_FIELDS: dict[type, tuple[str, ...]] = {}


def _data_fields(value: Any) -> tuple[str, ...]:
    """Which fields of this kind of state are data; the others are configuration built from the plan
    (compiled paths, alone or inside containers), which the parent has. Worked out once per class."""
    found = _DATA_FIELDS.get(type(value))
    if found is None:
        names = []
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.name in ("compiled", "accumulator", "cap") or callable(v):
                continue
            try:
                pickle.dumps(v)
            except (pickle.PicklingError, TypeError, AttributeError):
                continue
            names.append(f.name)
        found = _DATA_FIELDS[type(value)] = tuple(names)
    return found


def _data(value: Any) -> dict[str, Any]:
    """The data of a state or accumulator (compiled checks stay behind)."""
    return {name: getattr(value, name) for name in _data_fields(value)}


def portable(run: Run) -> dict[str, Any]:
    return {"states": {rid: (_data(s), _data(s.accumulator) if s.accumulator is not None else None)
                       for rid, s in run.states.items()},
            "read": _data(run.read_state), "counts": run.counts, "resources": run.resources, "stopped": run.stopped}


def absorb(run: Run, data: dict[str, Any]) -> None:
    """Merge a worker's plain data into the parent's run (which holds the compiled plan)."""
    for rid, (state_data, acc_data) in data["states"].items():
        mine = run.states[rid]
        other = RuleState(mine.compiled, mine.cap, **state_data)
        if mine.accumulator is not None and acc_data is not None:
            other.accumulator = mine.compiled.factory()
            for name, value in acc_data.items():
                setattr(other.accumulator, name, value)
        mine.merge(other)
    run.read_state.merge(RuleState(run.read_state.compiled, run.read_state.cap, **data["read"]))
    for rtype, n in data["counts"].items():
        run.counts[rtype] = run.counts.get(rtype, 0) + n
    run.resources += data["resources"]
    run.stopped = run.stopped or data["stopped"]


def run_parallel(plan: Plan, target: ExportTarget, inputs: PlanInputs, jobs: int,
                 progress: Callable[[int], None] | None = None,
                 stop: Callable[[], str | None] | None = None) -> Run:
    """The export's shards over ``jobs`` worker processes, merged into one run of ``plan``."""
    run = Run(plan)
    run.feed(target.refused())  # links not followed: said by the parent, once
    shards = shards_of(target, jobs)
    _PLANS[inputs] = plan
    context = _context()
    gc.freeze()  # forked workers share the parent's objects without the collector touching (copying) their pages
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        # largest first: the small shards left at the end even out the workers' finishing times
        share = sum(s.size for s in shards) // jobs
        futures = {pool.submit(run_shard, inputs, shard, share): shard
                   for shard in sorted(shards, key=lambda s: (-s.size, s.display, s.start))}
        try:
            for future in concurrent.futures.as_completed(futures):
                shard = futures[future]
                try:
                    absorb(run, future.result())
                except Exception as exc:  # noqa: BLE001 - a lost shard is an error finding, never silence
                    where = f"bytes {shard.start}-{shard.end}" if shard.end is not None else "the file"
                    run.read_state.add(Issue(f"{where} could not be checked: the worker failed ({exc})", None,
                                             "exception"), None, Location(shard.display, shard.first_line), None,
                                       error=True)
                if progress:
                    progress(shard.size)
                reason = stop() if stop else None
                if reason:
                    run.stopped = run.stopped or reason
                    for pending in futures:
                        pending.cancel()
                    break
        except KeyboardInterrupt:
            for pending in futures:
                pending.cancel()
            raise
        finally:
            gc.unfreeze()
    return run


def _context() -> Any:
    import multiprocessing  # noqa: PLC0415

    # fork shares the already-imported harness (fast start); spawn where fork is not offered
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
