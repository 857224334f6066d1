"""Identifier algorithms against the shared vectors and the UK Core examples."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from harness.identifiers import (
    is_repeated_digits,
    is_test_range,
    nhs_check_digit,
    nhs_number_problem,
    ods_code_problem,
    sctid_partition,
    sctid_problem,
    verhoeff_digit,
    verhoeff_valid,
)
from tests.conftest import DATA

VECTORS = list(csv.DictReader(
    (DATA / "vectors" / "nhs-number-test-vectors.csv").read_text(encoding="utf-8").splitlines()))


@pytest.mark.parametrize("row", VECTORS, ids=[f"{i}:{r['input']!r}" for i, r in enumerate(VECTORS)])
def test_nhs_number_vectors_after_trimming(row: dict[str, str]) -> None:
    """The vectors' strict column judges the trimmed value: ten digits and modulus 11."""
    problem = nhs_number_problem(row["input"].strip())
    assert (problem or "ok") == row["strict_reason"]


@pytest.mark.parametrize("row", [r for r in VECTORS if r["input"] != r["input"].strip()],
                         ids=lambda r: repr(r["input"]))
def test_stored_value_with_padding_is_a_format_error(row: dict[str, str]) -> None:
    assert nhs_number_problem(row["input"]) == "format"


def test_worked_example_and_ten_never_valid() -> None:
    assert nhs_check_digit("943476591") == 9
    assert nhs_check_digit("999123456") is None
    assert nhs_number_problem("9434765919") is None
    assert nhs_number_problem("9434765918") == "checkdigit-mismatch(expected 9)"


def test_policy_helpers() -> None:
    assert is_repeated_digits("4444444444") and not is_repeated_digits("9434765919")
    assert is_test_range("9990000018") and not is_test_range("9434765919")


def test_ranges_file_marks_999_as_test_range() -> None:
    rows = list(csv.DictReader((DATA / "vectors" / "nhs-number-ranges.csv").read_text(encoding="utf-8").splitlines()))
    test_rows = [r for r in rows if r["start"].startswith("999")]
    assert test_rows and all(is_test_range(r["start"]) and is_test_range(r["end"]) for r in test_rows)


@pytest.mark.parametrize(("code", "problem"), [
    ("VLAXL", None), ("RR8", None), ("K81003001", None), ("rr8", "ODS codes are stored upper case"),
    (" RR8", "ODS codes are stored upper case"), ("RR8-01", "an ODS code is 1 to 9"),
    ("ABCDEFGHIJ", "an ODS code is 1 to 9"), ("", "an ODS code is 1 to 9"),
])
def test_ods_codes(code: str, problem: str | None) -> None:
    found = ods_code_problem(code)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))


def _example_codes(pattern: str) -> set[str]:
    codes: set[str] = set()
    for f in (DATA / "ukcore-stu2" / "examples").glob("*.xml"):
        text = f.read_text(encoding="utf-8")
        codes.update(m.group(1) for m in re.finditer(
            r'<system value="' + pattern + r'"\s*/>\s*<code value="(\d+)"', text))
    return codes


def test_every_snomed_and_dmd_code_in_the_uk_core_examples_passes_verhoeff() -> None:
    codes = _example_codes(r"(?:http://snomed\.info/sct|https://dmd\.nhs\.uk/?)")
    assert len(codes) > 50
    assert sorted(c for c in codes if not verhoeff_valid(c)) == []


def test_verhoeff_digit_round_trip_and_single_digit_errors() -> None:
    for body in ("2229800", "3726870", "3973231100000110"):
        full = body + str(verhoeff_digit(body))
        assert verhoeff_valid(full)
        for pos in range(len(full)):
            altered = full[:pos] + str((int(full[pos]) + 1) % 10) + full[pos + 1:]
            assert not verhoeff_valid(altered), altered


@pytest.mark.parametrize(("sctid", "kind"), [
    ("22298006", "concept"), ("39732311000001104", "concept"), ("1480011", "description"),
])
def test_sctid_partitions(sctid: str, kind: str) -> None:
    assert sctid_partition(sctid) == kind


def test_sctid_problems() -> None:
    assert sctid_problem("22298006") is None
    assert "description id" in (sctid_problem("1480011") or "")
    assert sctid_problem("1480011", frozenset({"description"})) is None
    assert "Verhoeff" in (sctid_problem("22298007") or "")
    assert "6 to 18 digits" in (sctid_problem("02298006") or "")
    assert "6 to 18 digits" in (sctid_problem("12345") or "")


def test_vectors_file_is_where_we_expect() -> None:
    assert Path(DATA / "vectors" / "nhs-number-test-vectors.csv").is_file()
    assert len(VECTORS) == 75
