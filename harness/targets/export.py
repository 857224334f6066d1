"""The export target: files, directories and zips of NDJSON, FHIR JSON, FHIR XML and CSV.

Files are recognised by extension (``.ndjson``/``.jsonl``, ``.json``, ``.xml``, ``.csv``, ``.zip``);
CSV files are read through a data dictionary (``harness.targets.csv_export``).
Every file is hashed (SHA-256) for the report, and anything that is not a recognised export
file is reported as a read error rather than silently ignored.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from harness.errors import ConfigurationError, Problem
from harness.results import InputFile, Location
from harness.targets.base import Located, ReadError
from harness.targets.readers import read_json, read_ndjson, read_xml

if TYPE_CHECKING:
    from harness.targets.csv_export import CsvMap


def _maps_for(paths: list[Path] | None) -> list[CsvMap]:
    from harness.targets.csv_export import maps_for  # noqa: PLC0415 - most exports hold no CSV

    return maps_for(paths) if paths is not None else maps_for()

Reader = Callable[[IO[bytes], str], Iterator[Located | ReadError]]
READERS: dict[str, Reader] = {
    ".ndjson": read_ndjson, ".jsonl": read_ndjson, ".json": read_json, ".xml": read_xml,
}
IGNORED_NAMES = frozenset({"README", "README.md", "README.txt", "LICENSE"})
# Bounds on what a zip may expand to: a member, all members, the expansion ratio, the member count.
MAX_MEMBER_BYTES = 4 * 1024**3
MAX_TOTAL_BYTES = 64 * 1024**3
MAX_RATIO = 200
MAX_MEMBERS = 100_000


class _TooLarge(Exception):
    pass


class _Bounded(io.RawIOBase):
    """A zip member's stream that refuses to inflate past its bound (the header's sizes are not trusted)."""

    def __init__(self, stream: IO[bytes], limit: int, compressed: int) -> None:
        self.stream, self.limit, self.compressed, self.read_bytes = stream, limit, max(compressed, 1), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.stream.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self.stream.seek(offset, whence)
        self.read_bytes = position
        return position

    def tell(self) -> int:
        return self.stream.tell()

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise _TooLarge(f"member inflates past the {self.limit:,}-byte limit")
        if self.read_bytes > 1024 * 1024 and self.read_bytes > MAX_RATIO * self.compressed:
            raise _TooLarge(f"member inflates more than {MAX_RATIO} times its compressed size (a zip bomb?)")
        buffer[:len(data)] = data
        return len(data)


def _unreadable(suffix: str) -> str:
    return (f"not an export file this harness reads ({suffix or 'no extension'}); "
            "expected .ndjson, .jsonl, .json, .xml, .csv or .zip")


T = TypeVar("T")
_LEADING_WORD = re.compile(r"[A-Za-z]+")


@functools.cache
def _referred_to() -> dict[str, int]:
    """Resource types by lower-case name, with how many R4 reference elements may point at each."""
    from harness.fhir.model import r4  # noqa: PLC0415 - loaded by the plan already; not at import

    return {t.lower(): n for t, n in r4().referred_to().items()}


def reading_order(files: list[T], name: Callable[[T], str]) -> list[T]:
    """The files in the order they are read: those named for a resource type many others may refer to
    (``Organization.ndjson``, ``Practitioner.ndjson``, ``Patient.000.ndjson``…, ranked by R4's reference
    elements) before the rest, each rank in the given order. A reference to a resource already read
    resolves at once, so the reference rule holds almost nothing pending. Reports do not depend on the
    order (runs split into shards merge to the same report), only time and memory do."""
    referred = _referred_to()

    def rank(f: T) -> int:
        word = _LEADING_WORD.match(Path(name(f)).name)
        return -referred.get(word[0].lower(), 0) if word else 0

    return sorted(files, key=rank)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class ExportTarget:
    """One or more export paths, read in a stable order."""

    kind = "export"

    def __init__(self, paths: list[Path], csv_maps: list[Path] | tuple[Path, ...] = ()) -> None:
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise ConfigurationError([Problem("export path does not exist", str(p)) for p in missing])
        self.paths = paths
        self.csv_maps = tuple(csv_maps)
        # a supplier's mapping is checked now (a broken one is a usage error, before anything is read);
        # the shipped ones (and the CSV reader itself) load when the first CSV file does
        given = _maps_for(list(csv_maps)) if csv_maps else None

        @functools.cache
        def maps() -> list[CsvMap]:
            return given if given is not None else _maps_for(None)

        def csv_reader(stream: IO[bytes], name: str) -> Iterator[Located | ReadError]:
            from harness.targets.csv_export import read_csv  # noqa: PLC0415 - most exports hold no CSV

            return read_csv(stream, name, maps())

        self.readers: dict[str, Reader] = {**READERS, ".csv": csv_reader}
        self._refused: list[tuple[Path, str]] = []  # symbolic links not followed, and why
        self._files = [f for p in paths for f in self._expand(p)]

    def _expand(self, path: Path) -> list[Path]:
        if not path.is_dir():
            return [path]
        root, files = path.resolve(), []
        for p in sorted(path.rglob("*")):
            if any(x.startswith(".") for x in p.relative_to(path).parts):
                continue
            if p.is_symlink():
                target = p.resolve()
                if not target.exists():
                    self._refused.append((p, "a symbolic link to nothing; there is no file to read"))
                    continue
                if not target.is_relative_to(root):
                    self._refused.append((p, "a symbolic link out of the export folder; it was not followed "
                                             "(copy the file into the folder to include it)"))
                    continue
            if p.is_file():
                files.append(p)
        return files

    def display(self, path: Path) -> str:
        for root in self.paths:
            if root.is_dir() and path.is_relative_to(root):
                return str(Path(root.name) / path.relative_to(root))
        return path.name

    def inputs(self) -> list[InputFile]:
        return [InputFile(self.display(f), _sha256(f), f.stat().st_size) for f in self._files]

    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self._files)

    def files(self) -> list[Path]:
        """The files to read, in reading order (symbolic links out of the export left out)."""
        return reading_order(self._files, lambda f: f.name)

    def refused(self) -> Iterator[ReadError]:
        """The symbolic links not followed, each as a read error."""
        for link, why in self._refused:
            yield ReadError(Location(self.display(link)), why)

    def items(self, progress: Callable[[int], None] | None = None) -> Iterator[Located | ReadError]:
        yield from self.refused()
        for path in self.files():
            name = self.display(path)
            if path.name in IGNORED_NAMES:
                continue
            suffix = path.suffix.lower()
            if suffix == ".zip":
                yield from self._zip(path, name)
            elif suffix in self.readers:
                with path.open("rb") as stream:
                    yield from self.readers[suffix](stream, name)
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
            members = sorted(archive.infolist(), key=lambda i: i.filename)
            if len(members) > MAX_MEMBERS:
                yield ReadError(Location(name), f"zip holds {len(members):,} members, more than the "
                                                f"{MAX_MEMBERS:,} read; the rest are not checked")
                members = members[:MAX_MEMBERS]
            total = 0
            for info in reading_order(members, lambda i: i.filename):
                if info.is_dir() or Path(info.filename).name.startswith("."):
                    continue
                member = f"{name}!/{info.filename}"
                suffix = Path(info.filename).suffix.lower()
                reader = self.readers.get(suffix)
                if reader is None:
                    yield ReadError(Location(member), _unreadable(suffix))
                    continue
                if info.flag_bits & 0x1:
                    yield ReadError(Location(member), "zip member is encrypted: it cannot be read")
                    continue
                if total >= MAX_TOTAL_BYTES:
                    yield ReadError(Location(member), f"the zip has already inflated past {MAX_TOTAL_BYTES:,} "
                                                      "bytes: member not read")
                    continue
                bounded: _Bounded | None = None
                try:
                    with archive.open(info) as raw:
                        bounded = _Bounded(raw, min(MAX_MEMBER_BYTES, MAX_TOTAL_BYTES - total), info.compress_size)
                        with io.BufferedReader(bounded) as stream:
                            yield from reader(stream, member)
                except _TooLarge as exc:
                    yield ReadError(Location(member), f"zip member refused: {exc}")
                except NotImplementedError as exc:
                    yield ReadError(Location(member), f"zip member uses a compression this harness cannot read: {exc}")
                except (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError) as exc:
                    yield ReadError(Location(member), f"cannot read zip member: {exc}")
                finally:
                    total += bounded.read_bytes if bounded is not None else 0
