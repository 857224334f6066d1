"""Where the installed rule packs, suites and output schemas live (package data, or the source checkout)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    installed = _HERE / "_data" / name
    if installed.is_dir():
        return installed
    return _HERE.parent / name


def standards_dir() -> Path:
    return _data_dir("standards")


def suites_dir() -> Path:
    return _data_dir("suites")


def rulepack_schema_path() -> Path:
    return standards_dir() / "rulepack.schema.json"


def suite_schema_path() -> Path:
    return suites_dir() / "suite.schema.json"


def report_schema_path() -> Path:
    return _data_dir("reports") / "report.schema.json"


def assured_list_schema_path() -> Path:
    return _data_dir("reports") / "assured-list.schema.json"
