"""fuzz-export: generated datasets through a supplier's exporter come back whole, or the loss is shrunk."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app

EXPORTER = Path(__file__).parent / "data" / "exporter.py"
runner = CliRunner()


def test_faithful_exporter_passes(tmp_path: Path) -> None:
    res = runner.invoke(app, ["fuzz-export", f"{sys.executable} {EXPORTER} {{input}} {{output}} faithful",
                              "--examples", "5", "--keep", str(tmp_path / "ce")])
    assert res.exit_code == 0, res.output
    assert "5 generated dataset(s) came back whole and conforming" in res.output
    assert re.search(r"fuzz-export round trips: 5 datasets in \d+\.\d s", res.output)  # progress, in a log


def test_lossy_exporter_is_caught_and_the_dataset_kept(tmp_path: Path) -> None:
    # shrinking through a subprocess per example takes minutes; it is tested on the API properties
    res = runner.invoke(app, ["fuzz-export", f"{sys.executable} {EXPORTER} {{input}} {{output}} drop-second-given",
                              "--examples", "30", "--seed", "3", "--keep", str(tmp_path / "ce"), "--no-shrink"])
    assert res.exit_code == 1, res.output
    assert re.search(r"name\[\d\]\.given lost items \(sent \d, read 1\) in the export", " ".join(res.output.split()))
    kept = sorted(p.name for p in (tmp_path / "ce").iterdir())
    assert "Patient.ndjson" in kept or "Practitioner.ndjson" in kept


def test_command_needs_placeholders() -> None:
    res = runner.invoke(app, ["fuzz-export", "cp -r a b"])
    assert res.exit_code == 2 and "{input} and {output}" in res.output
