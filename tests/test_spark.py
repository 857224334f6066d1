"""`--engine spark` (PySpark, local[2]) gives the `--jobs 1` report, byte for byte apart from the run id
and times: on the reference export and on every defect switch, on NDJSON read by Spark from a URL
with many partitions (line numbers kept), and on Bundle JSON, XML and zip files.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from fixtures.defect_names import EXPORT_DEFECTS
from fixtures.export_generator import Generator, write_ndjson
from harness.cli import app
from harness.errors import ConfigurationError
from harness.runner import Assessment, assess
from harness.targets.export import ExportTarget
from tests.spark_support import find_or_install_java

AS_OF = dt.date(2026, 11, 1)
VOLATILE = ("id", "started", "finished")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    java, reason = find_or_install_java()
    if java is None:
        pytest.skip(reason)
    pytest.importorskip("pyspark", reason="PySpark (the spark extra) is not installed")
    from harness.spark_engine import _session

    session = _session("local[2]")
    yield session
    session.stop()


def _normal(a: Assessment) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(orjson.dumps(a.report))
    for key in VOLATILE:
        report["run"].pop(key)
    return report


def _both(paths: list[Path | str], local_paths: list[Path] | None = None, min_partitions: int | None = None,
          joins: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    from harness.spark_engine import JOIN_MIN_BYTES, SparkExport

    local = assess("asl-dscr-core", ExportTarget(local_paths or [Path(p) for p in paths]), as_of=AS_OF, jobs=1)
    spark = assess("asl-dscr-core", SparkExport(paths, master="local[2]", min_partitions=min_partitions,
                                                join_min_bytes=0 if joins else JOIN_MIN_BYTES), as_of=AS_OF)
    return _normal(local), _normal(spark)


# the defects dataset-level rules find: each is checked with those rules run as Spark joins too
DATASET_DEFECTS = ("nhs-duplicate", "duplicate-resource", "dangling-reference", "resident-without-care-plan",
                   "observation-not-linked", "task-not-linked", "site-run-by-org-without-ods",
                   "location-managed-by-practitioner", "unversioned-record")


@pytest.mark.parametrize("defect", [None, *EXPORT_DEFECTS])
def test_spark_gives_the_local_report_on_every_defect_switch(spark: Any, defect: str | None, tmp_path: Path) -> None:
    write_ndjson(Generator(8, seed=5, defects=(defect,) if defect else ()).resources(), tmp_path / "export")
    local, on_spark = _both([tmp_path / "export"])
    assert on_spark == local
    if defect:
        assert local["decision"]["outcome"] != "pass" or local["findings"], defect


@pytest.mark.parametrize("defects", [(), DATASET_DEFECTS, *((d,) for d in DATASET_DEFECTS)], ids=str)
def test_dataset_rules_as_spark_joins_give_the_local_report(spark: Any, defects: tuple[str, ...], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.spark_engine as engine

    joined: list[str] = []
    keyed = engine._keyed
    monkeypatch.setattr(engine, "_keyed", lambda kind, *rest: joined.append(kind.__name__) or keyed(kind, *rest))
    resources = list(Generator(12, seed=8, defects=defects).resources())
    write_ndjson(iter(resources), tmp_path / "export")
    write_ndjson(iter(resources[::5]), tmp_path / "export" / "again" / "copies")  # duplicates across files
    local, on_spark = _both([tmp_path / "export"], min_partitions=3, joins=True)
    assert on_spark == local
    assert any("more than once" in f["message"] for f in local["findings"])  # the copies are duplicates
    assert {"ReferenceAccumulator", "DuplicateIdAccumulator", "UniqueAccumulator", "ExistsPerAccumulator",
            "ReferencedAccumulator"} <= set(joined)  # every kind of dataset rule went through its join


def test_ndjson_from_a_url_in_many_partitions_keeps_its_line_numbers(spark: Any, tmp_path: Path) -> None:
    defects = ("nhs-duplicate", "dangling-reference", "duplicate-resource", "impossible-date", "bad-gender",
               "narrative-script", "no-narrative", "unknown-element")
    write_ndjson(Generator(60, seed=9, defects=defects).resources(), tmp_path / "export")
    with (tmp_path / "export" / "Observation.ndjson").open("ab") as f:
        f.write(b"\n{not json\n\xff\xfe not utf-8\n   \n")  # unreadable lines, an invalid encoding, a blank line
    local, on_spark = _both([f"file://{tmp_path / 'export'}"], [tmp_path / "export"], min_partitions=7)
    # Spark hands Python text, so the bytes that are not UTF-8 arrive replaced: the same line is a read
    # error either way, in its own words; everything else is the local report
    bad = "export/Observation.ndjson:363"
    mine = next(f for f in on_spark["findings"] if f["location"] == bad)
    theirs = next(f for f in local["findings"] if f["location"] == bad)
    assert mine["kind"] == theirs["kind"] == "error" and "U+FFFD" in mine["message"]
    assert "not valid UTF-8" in theirs["message"]
    assert [f for f in on_spark["findings"] if f is not mine] == [f for f in local["findings"] if f is not theirs]
    assert {k: v for k, v in on_spark.items() if k != "findings"} == {k: v for k, v in local.items()
                                                                     if k != "findings"}
    reads = [f for f in local["findings"] if f["rule"] == "HARNESS-READ-001"]
    assert [f["line"] for f in reads] == [362, 363]  # past the 361 written lines, counted across 7 partitions


def test_bundle_xml_and_zip_files_run_as_tasks(spark: Any, tmp_path: Path) -> None:
    resources = list(Generator(6, seed=4, defects=("nhs-bad-checksum", "dangling-reference")).resources())
    export = tmp_path / "export"
    export.mkdir()
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": f"urn:uuid:{i:08d}-0000-4000-8000-000000000000", "resource": r}
                        for i, r in enumerate(resources[: len(resources) // 2])]}
    (export / "bundle.json").write_bytes(orjson.dumps(bundle))
    with zipfile.ZipFile(export / "rest.zip", "w") as zf:
        zf.writestr("rest.ndjson", b"".join(orjson.dumps(r) + b"\n" for r in resources[len(resources) // 2:]))
    (export / "broken.xml").write_bytes(b"<Patient xmlns='http://hl7.org/fhir'><id value='x'/>")
    local, on_spark = _both([export])
    assert on_spark == local
    read = {i["path"] for i in local["run"]["target"]["inputs"] if i["path"].startswith("export/")}
    assert read == {"export/bundle.json", "export/rest.zip", "export/broken.xml"}


def test_remote_paths_take_ndjson_only_and_name_the_file(spark: Any, tmp_path: Path) -> None:
    from harness.spark_engine import SparkExport

    write_ndjson(Generator(3, seed=1).resources(), tmp_path / "export")
    (tmp_path / "export" / "extra.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"extra\.json"):
        assess("asl-dscr-core", SparkExport([f"file://{tmp_path / 'export'}"], master="local[2]"), as_of=AS_OF)
    with pytest.raises(ConfigurationError, match="does not exist"):
        assess("asl-dscr-core", SparkExport([f"file://{tmp_path / 'nowhere'}"], master="local[2]"), as_of=AS_OF)


def test_run_engine_spark_on_the_command_line(spark: Any, tmp_path: Path) -> None:
    write_ndjson(Generator(10, seed=2, defects=("nhs-bad-checksum",)).resources(), tmp_path / "export")
    reports = {}
    for name, extra in (("local", ["--jobs", "1"]), ("spark", ["--engine", "spark", "--spark-master", "local[2]"])):
        res = CliRunner().invoke(app, ["run", "asl-dscr-core", "--export", str(tmp_path / "export"), "--as-of",
                                       "2026-11-01", "--out", str(tmp_path / name), "-q", *extra])
        assert res.exit_code == 1, res.output
        report = json.loads((tmp_path / name / "report.json").read_text(encoding="utf-8"))
        for key in VOLATILE:
            report["run"].pop(key)
        reports[name] = report
    assert reports["spark"] == reports["local"]
    wrong = CliRunner().invoke(app, ["run", "asl-dscr-core", "--api", "http://127.0.0.1:9", "--engine", "spark",
                                     "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "reads exports" in wrong.output
    odd = CliRunner().invoke(app, ["run", "asl-dscr-core", "--export", str(tmp_path / "export"), "--engine", "dask",
                                   "--out", str(tmp_path / "y")])
    assert odd.exit_code == 2 and "'local' or 'spark'" in odd.output


def test_export_urls_survive_the_path_option() -> None:
    from harness.spark_engine import export_url

    assert export_url(Path("hdfs://namenode:8020/exports/care")) == "hdfs://namenode:8020/exports/care"
    assert export_url(Path("s3a://bucket/exports")) == "s3a://bucket/exports"
    assert export_url(Path("file:///tmp/export")) == "file:///tmp/export"
    assert export_url(Path("/tmp/export")) is None and export_url(Path("export")) is None
