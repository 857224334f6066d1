"""Indexes that spill to disk behave as a dict and a set, and a run whose indexes spill gives the same report."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.export_generator import Generator, write_ndjson
from harness.checks.dataset import subject_of
from harness.checks.registry import subject_at, subject_order, where_of, where_order
from harness.results import Location
from harness.runner import assess
from harness.spill import SpillMap, SpillSet
from harness.targets.export import ExportTarget

keys = st.text(min_size=0, max_size=6)
ops = st.lists(st.tuples(st.sampled_from(["set", "get", "in"]), keys, st.integers()), max_size=200)


@settings(max_examples=60, deadline=None)
@given(ops=ops, limit=st.integers(0, 8))
def test_spill_map_is_a_dict(ops: list[tuple[str, str, int]], limit: int) -> None:
    mine: SpillMap[int] = SpillMap(limit=limit)
    model: dict[str, int] = {}
    for op, key, value in ops:
        if op == "set":
            mine[key] = value
            model[key] = value
        elif op == "get":
            assert mine.get(key) == model.get(key)
        else:
            assert (key in mine) == (key in model)
    assert len(mine) == len(model) and dict(mine.items()) == model and sorted(mine) == sorted(model)
    again = pickle.loads(pickle.dumps(mine))
    assert dict(again.items()) == model and mine == model


@settings(max_examples=60, deadline=None)
@given(members=st.lists(keys, max_size=100), probes=st.lists(keys, max_size=30), limit=st.integers(0, 8))
def test_spill_set_is_a_set(members: list[str], probes: list[str], limit: int) -> None:
    mine = SpillSet(limit=limit)
    for m in members:
        mine.add(m)
    assert len(mine) == len(set(members)) and set(mine) == set(members)
    assert all((p in mine) == (p in set(members)) for p in probes)
    other = SpillSet(probes, limit=limit)
    other |= mine
    assert set(other) == set(members) | set(probes)
    assert pickle.loads(pickle.dumps(mine)) == set(members)


def test_a_spilled_index_leaves_no_file_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLITE_TMPDIR", str(tmp_path))  # where SQLite puts its temporary files
    index: SpillMap[str] = SpillMap(limit=2)
    for i in range(20_000):
        index[f"key-{i}"] = "value " * 20
    assert index.spilled and len(index) == 20_000 and index["key-19999"].startswith("value")
    assert list(tmp_path.iterdir()) == []  # unlinked as it was opened: nothing to leave behind


def report_of(report: dict[str, Any]) -> Any:
    done = orjson.loads(orjson.dumps(report))
    for key in ("id", "started", "finished"):
        done["run"].pop(key)
    return done


@pytest.mark.parametrize("defects", [(), ("duplicate-resource", "dangling-reference", "nhs-duplicate",
                                          "resident-without-care-plan", "observation-not-linked")])
def test_a_run_whose_indexes_spill_gives_the_same_report(defects: tuple[str, ...], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    write_ndjson(Generator(15, seed=3, defects=defects).resources(), tmp_path / "export")

    def report() -> Any:
        return report_of(assess("asl-dscr-core", ExportTarget([tmp_path / "export"]), as_of=dt.date(2026, 11, 1),
                                jobs=1).report)

    in_memory = report()
    import harness.spill

    opened: list[object] = []

    class CountedDisk(harness.spill._Disk):
        def __init__(self) -> None:
            super().__init__()
            opened.append(self)

    monkeypatch.setattr("harness.spill.LIMIT", 3)  # every index past three entries goes to disk
    monkeypatch.setattr("harness.spill._Disk", CountedDisk)
    assert report() == in_memory
    assert len(opened) >= 2  # the reference and duplicate-id indexes both spilled
    monkeypatch.setattr("harness.parallel.MIN_SHARD_BYTES", 4096)  # and over two processes, shards spilling
    assert report_of(assess("asl-dscr-core", ExportTarget([tmp_path / "export"]), as_of=dt.date(2026, 11, 1),
                            jobs=2).report) == in_memory


optional_text = st.none() | st.text(max_size=4)


@settings(max_examples=200, deadline=None)
@given(rtype=optional_text, rid=st.none() | st.integers() | st.text(max_size=4),
       where=st.none() | st.builds(Location, optional_text, st.none() | st.integers(0, 99), optional_text,
                                   optional_text, optional_text))
def test_a_subject_as_plain_data_keeps_its_order_and_comes_back_whole(rtype: str | None, rid: Any,
                                                                      where: Location | None) -> None:
    """Duplicate-id and pending-reference indexes hold tuples (``Where``), not Subjects: nothing may change."""
    resource = {"resourceType": rtype, "id": rid}
    compact = where_of(resource, where)
    subject = subject_of(resource, where)
    assert where_order(compact) == subject_order(subject)
    back = subject_at(compact)
    assert back.resource_type == subject.resource_type and back.resource_id == subject.resource_id
    assert back.location == (where if where is not None and where != Location() else None)
    assert pickle.loads(pickle.dumps(subject)) == subject


def test_the_memory_budget_is_shared_by_every_index_and_given_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run holds dozens of indexes (one per rule and kind of key): the bound is on all of them together."""
    import gc

    import harness.spill

    monkeypatch.setattr(harness.spill, "LIMIT", harness.spill._SHARED.used + 5)
    first: SpillMap[int] = SpillMap((str(i), i) for i in range(5))
    assert not first.spilled
    second: SpillMap[int] = SpillMap()
    second["a"] = 1
    assert second.spilled and second["a"] == 1  # the budget is spent: a new index spills at once
    del first
    gc.collect()
    third: SpillMap[int] = SpillMap()
    third["b"] = 2
    assert not third.spilled  # what the first held was given back


@settings(max_examples=60, deadline=None)
@given(entries=st.dictionaries(keys, st.integers(), max_size=60), limit=st.integers(0, 8))
def test_sorted_items_stream_in_key_order_across_memory_and_disk(entries: dict[str, int], limit: int) -> None:
    index: SpillMap[int] = SpillMap(entries.items(), limit=limit)
    assert list(index.sorted_items()) == sorted(entries.items())
