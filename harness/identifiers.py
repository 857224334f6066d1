"""Identifier algorithms: NHS number (modulus 11), ODS code format, SNOMED CT id (Verhoeff).

Pure functions returning a reason code (or None when the value is good), so checks, the
fixture generator and the Hypothesis strategies share one implementation.
"""

from __future__ import annotations

import re
from functools import lru_cache

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_ORGANIZATION_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ODS_SITE_SYSTEM = "https://fhir.nhs.uk/Id/ods-site-code"
SNOMED_SYSTEM = "http://snomed.info/sct"

_TEN_DIGITS = re.compile(r"[0-9]{10}")
_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus 11 check digit for nine digits, or None when no valid number starts so."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


@lru_cache(maxsize=1 << 16)
def nhs_number_problem(value: str) -> str | None:
    """Why a stored NHS number value is not valid ("format", "checkdigit-…"), or None.

    The stored form is exactly ten digits: spaces, hyphens or padding are format errors.
    """
    if not _TEN_DIGITS.fullmatch(value):
        return "format"
    expected = nhs_check_digit(value[:9])
    if expected is None:
        return "checkdigit-10-never-valid"
    if expected != int(value[9]):
        return f"checkdigit-mismatch(expected {expected})"
    return None


def is_repeated_digits(value: str) -> bool:
    return len(set(value)) == 1


def is_test_range(value: str) -> bool:
    """The 999 000 0000 – 999 999 9999 range is never issued: test data only."""
    return value.startswith("999")


_ODS = re.compile(r"[A-Z0-9]{1,9}")


@lru_cache(maxsize=1 << 12)
def ods_code_problem(value: str) -> str | None:
    if _ODS.fullmatch(value):
        return None
    if _ODS.fullmatch(value.strip().upper()):
        return "ODS codes are stored upper case with no surrounding spaces"
    return "an ODS code is 1 to 9 upper-case letters and digits"


# Verhoeff tables (dihedral group D5)
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6), (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4), (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2), (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_valid(digits: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i % 8][int(ch)]]
    return c == 0


def verhoeff_digit(digits: str) -> int:
    """The Verhoeff check digit to append to ``digits``."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + 1) % 8][int(ch)]]
    return _INV[c]


SCT_PARTITIONS = {"00": "concept", "01": "description", "02": "relationship",
                  "10": "concept", "11": "description", "12": "relationship"}
_SCTID = re.compile(r"[1-9][0-9]{5,17}")


def sctid_partition(value: str) -> str | None:
    """The kind of component a well-formed SCTID identifies, or None if malformed."""
    if not _SCTID.fullmatch(value) or not verhoeff_valid(value):
        return None
    return SCT_PARTITIONS.get(value[-3:-1])


@lru_cache(maxsize=1 << 16)
def sctid_problem(value: str, allowed: frozenset[str] = frozenset({"concept"})) -> str | None:
    if not _SCTID.fullmatch(value):
        return "a SNOMED CT id is 6 to 18 digits with no leading zero"
    if not verhoeff_valid(value):
        return "the Verhoeff check digit is wrong"
    kind = SCT_PARTITIONS.get(value[-3:-1])
    if kind is None:
        return f"partition identifier '{value[-3:-1]}' is not a known partition"
    if kind not in allowed:
        return f"this is a {kind} id (partition {value[-3:-1]}); expected a {' or '.join(sorted(allowed))} id"
    return None
