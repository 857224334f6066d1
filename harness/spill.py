"""Indexes that spill to disk: a set and a map that keep a bounded number of entries in memory.

Dataset-level rules index every resource of an export (its key, for references to resolve and
duplicate ids to be found). Past ``limit`` entries the rest go to a SQLite file in the temporary
directory (no journal, no fsync: it is scratch, deleted when the index is), and a Bloom filter
in memory answers most "is it there?" questions for keys that are not, without a disk read. So a
10-million-resource export is checked in the memory a 100,000-resource one needs. Pickling
(``--jobs`` workers, Spark tasks) sends the entries themselves: a shard is bounded by its size.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

V = TypeVar("V")
LIMIT = int(os.environ.get("CARE_ASSURE_INDEX_LIMIT", "200000"))  # entries kept in memory, per index
BLOOM_BITS = 1 << 27  # 16 MiB of filter: about 1 % false positives at 13 million keys
BATCH = 5000  # writes buffered before they go to disk


class _Disk:
    """The spilled part: a SQLite table of pickled values, a write buffer and a Bloom filter."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="care-assure-index-", suffix=".sqlite")
        os.close(fd)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE", "cache_size = -8192"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE e (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        self.bloom = bytearray(BLOOM_BITS // 8)
        self.buffer: dict[str, bytes] = {}
        self.count = 0
        self._finalizer = weakref.finalize(self, _remove, self.db, self.path)

    def _bits(self, key: str) -> tuple[int, int, int]:
        h = hash(key)
        h2 = (h >> 32) | 1
        mask = BLOOM_BITS - 1
        return h & mask, (h + h2) & mask, (h + 2 * h2) & mask

    def maybe(self, key: str) -> bool:
        bloom = self.bloom
        return all(bloom[b >> 3] & (1 << (b & 7)) for b in self._bits(key))

    def get(self, key: str) -> bytes | None:
        if not self.maybe(key):
            return None
        found = self.buffer.get(key)
        if found is not None:
            return found
        row = self.db.execute("SELECT v FROM e WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: bytes, new: bool) -> None:
        for b in self._bits(key):
            self.bloom[b >> 3] |= 1 << (b & 7)
        self.buffer[key] = value
        self.count += new
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.db.executemany("INSERT OR REPLACE INTO e VALUES (?, ?)", self.buffer.items())
            self.buffer.clear()

    def items(self) -> Iterator[tuple[str, bytes]]:
        self.flush()
        yield from self.db.execute("SELECT k, v FROM e ORDER BY k")


def _remove(db: sqlite3.Connection, path: str) -> None:
    db.close()
    Path(path).unlink(missing_ok=True)


class SpillMap(MutableMapping[str, V]):
    """A str-keyed dict with at most ``limit`` entries in memory; values must be picklable.

    Values are copies once spilled: change one by assigning it again (``m[k] = v``), never in place.
    Deleting is not offered (the rules never forget a key).
    """

    def __init__(self, items: Iterable[tuple[str, V]] = (), limit: int | None = None) -> None:
        self.mem: dict[str, V] = {}
        self.limit = LIMIT if limit is None else limit
        self.disk: _Disk | None = None
        for k, v in items:
            self[k] = v

    def __getitem__(self, key: str) -> V:
        try:
            return self.mem[key]
        except KeyError:
            pass
        raw = self.disk.get(key) if self.disk is not None else None
        if raw is None:
            raise KeyError(key)
        value: V = pickle.loads(raw)
        return value

    def __setitem__(self, key: str, value: V) -> None:
        if key in self.mem or (self.disk is None and len(self.mem) < self.limit):
            self.mem[key] = value
            return
        if self.disk is None:
            self.disk = _Disk()
        new = self.disk.get(key) is None
        self.disk.put(key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), new)

    def __delitem__(self, key: str) -> None:
        raise TypeError("a spilling index does not forget keys")

    def __contains__(self, key: object) -> bool:
        if key in self.mem:
            return True
        return isinstance(key, str) and self.disk is not None and self.disk.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        yield from self.mem
        if self.disk is not None:
            for k, _v in self.disk.items():
                yield k

    def items(self) -> Iterator[tuple[str, V]]:  # type: ignore[override]
        yield from self.mem.items()
        if self.disk is not None:
            for k, v in self.disk.items():
                yield k, pickle.loads(v)

    def __len__(self) -> int:
        return len(self.mem) + (self.disk.count if self.disk is not None else 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (dict, SpillMap)) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (SpillMap, (list(self.items()),))

    @property
    def spilled(self) -> bool:
        return self.disk is not None


class SpillSet:
    """A set of str with at most ``limit`` members in memory (a ``SpillMap`` to nothing)."""

    def __init__(self, members: Iterable[str] = (), limit: int | None = None) -> None:
        self.map: SpillMap[bool] = SpillMap(limit=limit)
        self |= members

    def add(self, key: str) -> None:
        if key not in self.map:
            self.map[key] = True

    def __contains__(self, key: object) -> bool:
        return key in self.map

    def __ior__(self, other: Iterable[str]) -> SpillSet:
        for key in other:
            self.add(key)
        return self

    def __iter__(self) -> Iterator[str]:
        return iter(self.map)

    def __len__(self) -> int:
        return len(self.map)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (set, frozenset, SpillSet)) and set(self) == set(other)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (SpillSet, (list(self),))

    @property
    def spilled(self) -> bool:
        return self.map.spilled
