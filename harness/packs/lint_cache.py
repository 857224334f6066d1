"""Which pack and suite files already passed lint, byte for byte, with this harness: a run need not lint them again.

`packs lint` always lints. A run (``Catalogue``) lints a pack the first time it meets its bytes
and records the SHA-256 in the user's cache (``$CARE_ASSURE_CACHE``, else
``$XDG_CACHE_HOME/care-assure``, else ``~/.cache/care-assure``), in a file named for this
harness: its version, the loader, the check kinds, the FHIRPath and element-path code and the
rule-pack schema. A pack whose bytes change, or a
harness that lints differently, is linted again. The cache holds hashes only (JSON, never code);
when it cannot be read or written, every pack is linted, as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

from harness import __version__
from harness.paths import rulepack_schema_path, suite_schema_path


def cache_dir() -> Path:
    given = os.environ.get("CARE_ASSURE_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "care-assure"


@functools.cache
def _stamp() -> str:
    """This harness's way of linting: its version and the code and schema lint reads (check kinds included)."""
    harness = Path(__file__).parents[1]
    digest = hashlib.sha256(__version__.encode())
    for source in (Path(__file__).with_name("loader.py"), rulepack_schema_path(), suite_schema_path(),
                   harness / "suites.py", harness / "fhirpath.py",
                   harness / "fhir" / "element_paths.py", *sorted((harness / "checks").glob("*.py"))):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _file() -> Path:
    return cache_dir() / f"linted-packs-{_stamp()}.json"


@functools.cache
def _passed() -> set[str]:
    try:
        found = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {x for x in found if isinstance(x, str)} if isinstance(found, list) else set()


def passed(sha256: str) -> bool:
    return sha256 in _passed()


def record(sha256: str) -> None:
    """Remember that these bytes passed lint (written atomically; a failure to write is no failure)."""
    known = _passed()
    if sha256 in known:
        return
    known.add(sha256)
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".linted-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(sorted(known), f)
        Path(tmp).replace(_file())
    except OSError:
        return
