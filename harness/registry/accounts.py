"""Accounts of the web workspace: roles, password rules and argon2 hashing (argon2-cffi)."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from harness.errors import ConfigurationError

ROLES = ("viewer", "assessor", "admin")  # each includes what the one before it may do
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a hostile login cheap to refuse
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("care-assure: the hash checked when no such user exists")


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise ConfigurationError(f"user name '{username[:64]}' must be 2–64 lower-case letters, digits, '.', '_' "
                                 "or '-', starting with a letter or digit")
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ConfigurationError(f"role '{role}' is not one of {', '.join(ROLES)}")
    return role


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ConfigurationError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ConfigurationError(f"a password may have at most {MAX_PASSWORD} characters")
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Check ``password`` against a stored hash; with no stored hash, spend the same time and say no."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        _hasher.verify(stored or _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


def may(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (viewer < assessor < admin)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)
