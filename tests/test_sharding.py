"""Any sharding of a target and any merge order give the same report, byte for byte (issue: scale out).

The run state of each shard is merged associatively and commutatively: counts add up, and the
findings kept under the per-rule cap are the first by a total order of where they are (file,
line, pointer, resource), never whichever shard finished first.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.export_generator import Generator, write_ndjson
from harness.decision import decide
from harness.engine import Run
from harness.plan import build_plan
from harness.reports.canonical import build_report, dumps
from harness.suites import Catalogue, load_suite
from harness.targets.export import ExportTarget

AS_OF = dt.date(2026, 11, 1)
MOMENT = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
DEFECTS = ("nhs-duplicate", "dangling-reference", "ods-lowercase", "duplicate-resource", "impossible-date",
           "resident-without-care-plan", "bad-gender", "narrative-script", "no-narrative")


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, list[Any]]:
    base = tmp_path_factory.mktemp("sharding")
    resources = list(Generator(10, seed=6, defects=DEFECTS).resources())
    for patient in [r for r in resources if r["resourceType"] == "Patient"][::2]:
        patient.pop("extension", None)  # several resources fail the same resource-level rule: the cap bites there
        patient["gender"] = "F"
    write_ndjson(iter(resources), base / "export")
    suite_file = base / "suite.yaml"  # the core suite with a cap of 1, so the caps bite
    core = (Path(__file__).parents[1] / "suites" / "asl-dscr-core.yaml").read_text(encoding="utf-8")
    suite_file.write_text(core.replace("max_findings_per_rule: 100", "max_findings_per_rule: 1"), encoding="utf-8")
    suite = load_suite(suite_file)
    catalogue = Catalogue.default()
    plan = build_plan(suite, catalogue, AS_OF, "export")
    return suite, plan, list(ExportTarget([base / "export"]).items())


def _report(suite: Any, run: Run) -> tuple[bytes, Any]:
    result = run.finish([], "export", True)
    decision = decide(result.rules, suite.policy, result.could_not_evaluate)
    report = build_report(result, decision, title=suite.title, started=MOMENT, finished=MOMENT, run_id="run")
    return dumps(report), result


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(shards=st.integers(1, 8), seed=st.integers(0, 2**32 - 1), shuffle=st.booleans())
def test_random_shardings_and_merge_orders_give_the_same_report(
        setting: tuple[Any, Any, list[Any]], shards: int, seed: int, shuffle: bool) -> None:
    suite, plan, items = setting
    whole = Run(plan)
    whole.feed(items)
    expected, result = _report(suite, whole)
    assert [r for r in result.rules if r.failed + r.errors > len(r.findings)]  # the cap bites somewhere
    rng = random.Random(seed)
    order = list(items)
    if shuffle:  # a shard need not see its items in file order either
        rng.shuffle(order)
    cuts = sorted(rng.sample(range(1, len(order)), shards - 1)) if shards > 1 else []
    pieces = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    runs = []
    for piece in pieces:
        run = Run(plan)
        run.feed(piece)
        runs.append(run)
    rng.shuffle(runs)
    while len(runs) > 1:  # merge in a random tree, not only left to right
        i = rng.randrange(len(runs) - 1)
        runs[i].merge(runs.pop(i + 1))
    assert _report(suite, runs[0])[0] == expected


def _normalised(report: dict[str, Any]) -> bytes:
    run = {k: v for k, v in report["run"].items() if k not in ("id", "started", "finished")}
    return dumps({**report, "run": run})


@pytest.fixture(scope="module")
def small_shards() -> Any:
    from harness import parallel

    saved = parallel.MIN_SHARD_BYTES
    parallel.MIN_SHARD_BYTES = 16 * 1024  # so a test-sized export is cut into several ranges per file
    yield parallel
    parallel.MIN_SHARD_BYTES = saved


@pytest.mark.parametrize("defect", [None, "nhs-duplicate", "duplicate-resource", "dangling-reference",
                                    "resident-without-care-plan", "impossible-date", "narrative-script"])
def test_jobs_2_gives_the_jobs_1_report(defect: str | None, tmp_path: Path, small_shards: Any) -> None:
    from harness.runner import assess

    write_ndjson(Generator(60, seed=2, defects=(defect,) if defect else ()).resources(), tmp_path / "export")
    target = ExportTarget([tmp_path / "export"])
    assert len(small_shards.shards_of(target, 2)) > len(target.files())  # files were cut into ranges
    one = assess("asl-dscr-core", target, as_of=AS_OF, jobs=1).report
    two = assess("asl-dscr-core", ExportTarget([tmp_path / "export"]), as_of=AS_OF, jobs=2).report
    assert _normalised(two) == _normalised(one)


def test_ranges_start_on_their_own_line_numbers(tmp_path: Path, small_shards: Any) -> None:
    path = tmp_path / "export" / "Patient.ndjson"
    path.parent.mkdir()
    lines = (json.dumps({"resourceType": "Patient", "id": f"p{i}", "gender": "boy" if i % 97 == 0 else "female"})
             for i in range(3000))
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    shards = small_shards.shards_of(ExportTarget([path.parent]), 2)
    assert len(shards) > 2 and shards[0].first_line == 1
    assert sum(s.size for s in shards) == path.stat().st_size
    seen = [item.location.line for s in shards for item in small_shards._items(s, ())]
    assert seen == list(range(1, 3001))


def test_a_failing_worker_is_an_error_finding_never_a_lost_shard(tmp_path: Path, small_shards: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.runner import assess

    write_ndjson(Generator(30, seed=2).resources(), tmp_path / "export")
    monkeypatch.setattr(small_shards, "run_shard", _flaky)
    report = assess("asl-dscr-core", ExportTarget([tmp_path / "export"]), as_of=AS_OF, jobs=2).report
    errors = [f for f in report["findings"] if f["rule"] == "HARNESS-READ-001"]
    assert errors and all("could not be checked: the worker failed (worker died)" in f["message"] for f in errors)
    assert report["decision"]["outcome"] != "pass"


def test_each_worker_warms_up_for_its_share_of_the_export_not_for_one_shard(
        tmp_path: Path, small_shards: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker process stays for many shards, so the accept path's warm-up (walk the first resources of a
    type before compiling its schema, for small runs) is decided by its share of the export, not by a
    shard's size: an export cut into 16 KiB shards is still a large run for each of two workers."""
    from harness.fhir import accept
    from harness.parallel import PlanInputs, run_shards, shards_of
    from harness.runner import assess

    write_ndjson(Generator(30, seed=2).resources(), tmp_path / "export")
    target = ExportTarget([tmp_path / "export"])
    total = sum(f.stat().st_size for f in (tmp_path / "export").iterdir())
    monkeypatch.setattr(small_shards, "run_shard", _telling)
    report = assess("asl-dscr-core", target, as_of=AS_OF, jobs=2).report
    said = {f["message"].rsplit("(", 1)[1] for f in report["findings"] if f["rule"] == "HARNESS-READ-001"}
    assert said == {f"share {total // 2})"}  # what run_parallel tells each worker

    inputs = PlanInputs("asl-dscr-core", (), None, AS_OF, None, None, ())
    shard = next(s for s in shards_of(target, 2) if s.display.endswith("Observation.ndjson"))
    assert shard.size < accept.LARGE_EXPORT
    walked = []
    for share in (None, accept.LARGE_EXPORT):  # the shard's own size; a share past the bound
        monkeypatch.setattr(accept, "_walked", {})
        run_shards(inputs, [shard], share)
        walked.append(accept._walked.get("Observation", 0))
    assert walked[0] > 0 and walked[1] == 0


def _telling(inputs: Any, shard: Any, share: Any = None) -> Any:
    """A worker that says, as its failure, the share of the export it was given."""
    raise RuntimeError(f"share {share}")


def _flaky(inputs: Any, shard: Any, share: Any = None) -> Any:
    """A worker that dies on the Patient file (module level, so it can be sent to a worker process)."""
    from harness.parallel import Run, _items, plan_of, portable

    if shard.display.endswith("Patient.ndjson"):
        raise RuntimeError("worker died")
    run = Run(plan_of(inputs))
    run.feed(_items(shard, inputs.csv_maps))
    return portable(run)


def test_a_dangling_reference_keeps_the_same_example_whichever_shard_merges_first() -> None:
    from harness.checks.dataset import ReferenceAccumulator
    from harness.results import Location
    from harness.targets.base import Located

    def shard(line: int, rid: str) -> ReferenceAccumulator:
        acc = ReferenceAccumulator(())
        resource = {"resourceType": "Observation", "id": rid, "subject": {"reference": "Patient/missing"}}
        acc.observe(Located(resource, Location("export/Observation.ndjson", line), None, None), True)
        return acc

    def merged(first: ReferenceAccumulator, second: ReferenceAccumulator) -> list[Any]:
        first.merge(second)
        return [(issue.message, subject) for issue, subject in first.finish()]

    early_then_late = merged(shard(3, "obs-early"), shard(90, "obs-late"))
    late_then_early = merged(shard(90, "obs-late"), shard(3, "obs-early"))
    assert early_then_late == late_then_early
    assert early_then_late[0][1].resource_id == "obs-early" and "referred to 2 times" in early_then_late[0][0]


def test_a_shard_state_is_portable_whether_or_not_its_expressions_have_run(tmp_path: Path) -> None:
    """A worker whose first shard never ran a rule's FHIRPath must send the same fields as one whose did:
    compiled expressions are configuration, never data (found by `make bench`: a later shard's state would
    not pickle, and its resources became read errors)."""
    import pickle

    from harness import parallel

    catalogue = Catalogue.default()
    plan = build_plan(catalogue.suite("asl-dscr-core"), catalogue, AS_OF, "export")
    parallel._DATA_FIELDS.clear()
    untouched = parallel.portable(Run(plan))  # no resource read: no expression has run
    pickle.dumps(untouched)
    write_ndjson(Generator(3, seed=2).resources(), tmp_path / "export")
    used = Run(plan)
    used.feed(ExportTarget([tmp_path / "export"]).items())
    pickle.dumps(parallel.portable(used))  # every rule's expressions have run now
    assert {rid: (set(s), set(a or ())) for rid, (s, a) in untouched["states"].items()} == \
        {rid: (set(s), set(a or ())) for rid, (s, a) in parallel.portable(used)["states"].items()}


def test_the_report_does_not_depend_on_the_order_files_are_read_in(
        setting: tuple[Any, Any, list[Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are read with the most referred-to types first (``reading_order``); name order, the reverse
    and shuffles give the same report, byte for byte: the example kept of a dangling reference, of a
    "#id" naming no contained resource (a bound of 1, so the bound bites) and every capped finding are
    the least by where they were read, not the first met."""
    from harness.checks import dataset
    from harness.targets import export

    suite, plan, _ = setting
    write_ndjson(Generator(6, seed=4, defects=DEFECTS).resources(), tmp_path / "export")
    for name, rtype in (("Aa-more.ndjson", "Task"), ("Ab-more.ndjson", "Flag"), ("Zz-more.ndjson", "Task")):
        rows = [{"resourceType": rtype, "id": f"{name[:2]}-{i}", "status": "active",
                 "subject": {"reference": "Patient/ghost"}, "focus": {"reference": f"#nowhere-{i}"}}
                for i in range(3)]
        (tmp_path / "export" / name).write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    monkeypatch.setattr(dataset, "LOCAL_EXAMPLES", 1)
    default = export.reading_order
    assert [p.name for p in ExportTarget([tmp_path / "export"]).files()][:3] == [
        "Organization.ndjson", "Practitioner.ndjson", "Patient.ndjson"]
    orders: list[Any] = [lambda files, name: list(files), lambda files, name: list(reversed(files)), default]
    for seed in range(3):
        orders.append(lambda files, name, seed=seed: random.Random(seed).sample(list(files), len(files)))
    seen = []
    for order in orders:
        monkeypatch.setattr(export, "reading_order", order)
        run = Run(plan)
        run.feed(ExportTarget([tmp_path / "export"]).items())
        references = run.states["FHIR-REF-001"].accumulator
        ghost = references.pending.get("Patient/ghost")
        references._trim()
        examples = (ghost[0][2:4], ghost[2], [(s.location.file, s.location.line) for _, s in references.local])
        seen.append((_report(suite, run)[0], examples))
    assert all(s == seen[0] for s in seen), "a reading order changed the report"
    assert seen[0][1] == (("export/Aa-more.ndjson", 1), 9, [("export/Aa-more.ndjson", 1)])


def test_jobs_0_uses_every_core_from_the_size_where_it_pays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--jobs 0 (the CLI's default) is one process below PARALLEL_MIN_BYTES and every core from it;
    an explicit --jobs is taken as given, and an API target is always one process."""
    from harness import runner
    from harness.parallel import default_jobs
    from harness.targets.api import ApiTarget

    write_ndjson(Generator(4, seed=2).resources(), tmp_path / "export")
    target = ExportTarget([tmp_path / "export"])
    size = target.total_bytes()
    assert size < runner.PARALLEL_MIN_BYTES and runner._workers(0, target) == 1
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", size)
    assert runner._workers(0, target) == default_jobs()
    assert (runner._workers(1, target), runner._workers(3, target)) == (1, 3)
    assert runner._workers(0, ApiTarget.__new__(ApiTarget)) == 1
