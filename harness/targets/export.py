"""The export target: files, directories and zips of NDJSON, FHIR JSON and FHIR XML.

Files are recognised by extension (``.ndjson``/``.jsonl``, ``.json``, ``.xml``, ``.zip``).
Every file is hashed (SHA-256) for the report, and anything that is not a recognised export
file is reported as a read error rather than silently ignored.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from harness.errors import ConfigurationError, Problem
from harness.results import InputFile, Location
from harness.targets.base import Located, ReadError
from harness.targets.readers import read_json, read_ndjson, read_xml

Reader = Callable[[IO[bytes], str], Iterator[Located | ReadError]]
READERS: dict[str, Reader] = {
    ".ndjson": read_ndjson, ".jsonl": read_ndjson, ".json": read_json, ".xml": read_xml,
}
IGNORED_NAMES = frozenset({"README", "README.md", "README.txt", "LICENSE"})


def _unreadable(suffix: str) -> str:
    return (f"not an export file this harness reads ({suffix or 'no extension'}); "
            "expected .ndjson, .jsonl, .json, .xml or .zip")


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class ExportTarget:
    """One or more export paths, read in a stable order."""

    kind = "export"

    def __init__(self, paths: list[Path]) -> None:
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise ConfigurationError([Problem("export path does not exist", str(p)) for p in missing])
        self.paths = paths
        self._files = [f for p in paths for f in self._expand(p)]

    @staticmethod
    def _expand(path: Path) -> list[Path]:
        if path.is_dir():
            return sorted(p for p in path.rglob("*")
                          if p.is_file() and not any(x.startswith(".") for x in p.relative_to(path).parts))
        return [path]

    def display(self, path: Path) -> str:
        for root in self.paths:
            if root.is_dir() and path.is_relative_to(root):
                return str(Path(root.name) / path.relative_to(root))
        return path.name

    def inputs(self) -> list[InputFile]:
        return [InputFile(self.display(f), _sha256(f), f.stat().st_size) for f in self._files]

    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self._files)

    def items(self, progress: Callable[[int], None] | None = None) -> Iterator[Located | ReadError]:
        for path in self._files:
            name = self.display(path)
            if path.name in IGNORED_NAMES:
                continue
            suffix = path.suffix.lower()
            if suffix == ".zip":
                yield from self._zip(path, name)
            elif suffix in READERS:
                with path.open("rb") as stream:
                    yield from READERS[suffix](stream, name)
            else:
                yield ReadError(Location(name), _unreadable(suffix))
            if progress:
                progress(path.stat().st_size)

    def _zip(self, path: Path, name: str) -> Iterator[Located | ReadError]:
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            yield ReadError(Location(name), f"not a readable zip file: {exc}")
            return
        with archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or Path(info.filename).name.startswith("."):
                    continue
                member = f"{name}!/{info.filename}"
                suffix = Path(info.filename).suffix.lower()
                reader = READERS.get(suffix)
                if reader is None:
                    yield ReadError(Location(member), _unreadable(suffix))
                    continue
                try:
                    with archive.open(info) as stream:
                        yield from reader(stream, member)
                except (zipfile.BadZipFile, OSError) as exc:
                    yield ReadError(Location(member), f"cannot read zip member: {exc}")
