"""Indexes that spill to disk: a set and a map that keep a bounded number of entries in memory.

Dataset-level rules index every resource of an export (its key, for references to resolve and
duplicate ids to be found). Past ``LIMIT`` entries held by all of a process's indexes together,
new entries go to SQLite's private temporary database (no journal, no fsync: it is scratch, gone
when the index is), and a Bloom filter in memory answers most "is it there?" questions for keys
that are not, without a disk read. So a 10-million-resource export is checked in about the memory
a 300,000-resource one needs. Pickling (``--jobs`` workers, Spark tasks) sends the entries
themselves: a shard is bounded by its size.
"""

from __future__ import annotations

import heapq
import operator
import os
import pickle
import sqlite3
import weakref
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, TypeVar

V = TypeVar("V")
# Entries kept in memory by all the indexes of one process together (a run has dozens: per rule,
# every resource key, every resident's key, every NHS number…); past it, new entries spill.
LIMIT = int(os.environ.get("CARE_ASSURE_INDEX_LIMIT", "300000"))
BLOOM_BITS = 1 << 20  # the filter's first size (128 KiB); it doubles to stay at 10 bits or more per key
BATCH = 5000  # writes buffered before they go to disk
HOT = 16384  # members found on disk kept at hand, the oldest forgotten first


class _Disk:
    """The spilled part: a SQLite table of pickled values, a write buffer and a Bloom filter.

    The database is SQLite's private temporary one (an empty file name): it lives in memory up to
    its cache size and then in a file SQLite unlinks as it opens it, so nothing is left behind,
    even by a process that is killed.
    """

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -2048"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE e (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        self.bits = BLOOM_BITS
        self.bloom = bytearray(self.bits // 8)
        self.buffer: dict[str, bytes] = {}
        self.count = 0
        self._finalizer = weakref.finalize(self, self.db.close)

    def _bits(self, key: str) -> tuple[int, int, int]:
        h = hash(key)
        h2 = (h >> 32) | 1
        mask = self.bits - 1
        return h & mask, (h + h2) & mask, (h + 2 * h2) & mask

    def _mark(self, key: str) -> None:
        bloom = self.bloom
        for b in self._bits(key):
            bloom[b >> 3] |= 1 << (b & 7)

    def _grow(self) -> None:
        """Double the filter and mark every key again (amortised: each doubling follows as many new keys)."""
        self.flush()
        self.bits *= 2
        self.bloom = bytearray(self.bits // 8)
        for (key,) in self.db.execute("SELECT k FROM e"):
            self._mark(key)

    def maybe(self, key: str) -> bool:
        """False: certainly not stored; the usual answer for a new key, so each probe may end it."""
        h = hash(key)
        mask = self.bits - 1
        bloom = self.bloom
        a = h & mask
        if not bloom[a >> 3] & (1 << (a & 7)):
            return False
        h2 = (h >> 32) | 1
        b, c = (h + h2) & mask, (h + 2 * h2) & mask
        return bool(bloom[b >> 3] & (1 << (b & 7)) and bloom[c >> 3] & (1 << (c & 7)))

    def get(self, key: str) -> bytes | None:
        if not self.maybe(key):
            return None
        found = self.buffer.get(key)
        if found is not None:
            return found
        row = self.db.execute("SELECT v FROM e WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: bytes, new: bool | None = None) -> None:
        """Store ``key``; ``new`` None: find out whether it was there (a caller that just looked says so)."""
        if new is None:
            new = self.get(key) is None
        self._mark(key)
        self.buffer[key] = value
        self.count += new
        if self.count * 10 > self.bits:
            self._grow()
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.db.execute("BEGIN")  # one transaction for the batch (else each row commits on its own)
            self.db.executemany("INSERT OR REPLACE INTO e VALUES (?, ?)", self.buffer.items())
            self.db.execute("COMMIT")
            self.buffer.clear()

    def items(self) -> Iterator[tuple[str, bytes]]:
        self.flush()
        yield from self.db.execute("SELECT k, v FROM e ORDER BY k")


_MISSING: Any = object()
_TRUE = pickle.dumps(True, protocol=pickle.HIGHEST_PROTOCOL)


class _Budget:
    """How many entries the process's indexes keep in memory together."""

    def __init__(self) -> None:
        self.used = 0


_SHARED = _Budget()


def _release(mem: dict[str, Any]) -> None:
    """An index is gone: what it held in memory is free for the others."""
    _SHARED.used -= len(mem)


class SpillMap(MutableMapping[str, V]):
    """A str-keyed dict keeping entries in memory while the process's budget (``LIMIT``) lasts.

    Past it, new keys go to disk. Values are copies once spilled: change one by assigning it again
    (``m[k] = v``), never in place. Deleting is not offered (the rules never forget a key).
    ``limit``: a bound of this index's own instead of the shared one.
    """

    def __init__(self, items: Iterable[tuple[str, V]] = (), limit: int | None = None) -> None:
        self.mem: dict[str, V] = {}
        self.own_limit = limit  # a bound of its own (tests, callers wanting a fixed one), else the shared budget
        self.disk: _Disk | None = None
        if limit is None:  # what this index holds is given back to the shared budget when it goes
            weakref.finalize(self, _release, self.mem)
        for k, v in items:
            self[k] = v

    def _room(self) -> bool:
        """Whether one more entry may be kept in memory (taking it from the budget)."""
        if self.own_limit is not None:
            return len(self.mem) < self.own_limit
        if _SHARED.used >= LIMIT:
            return False
        _SHARED.used += 1
        return True

    def get(self, key: str, default: Any = None) -> Any:
        """The value, or ``default``, with no exception on the way: a new key is the usual case, per resource."""
        found = self.mem.get(key, _MISSING)
        if found is not _MISSING:
            return found
        raw = self.disk.get(key) if self.disk is not None else None
        return default if raw is None else pickle.loads(raw)  # our own scratch file, written by this process

    def __getitem__(self, key: str) -> V:
        found = self.get(key, _MISSING)
        if found is _MISSING:
            raise KeyError(key)
        value: V = found
        return value

    def __setitem__(self, key: str, value: V) -> None:
        if key in self.mem or (self.disk is None and self._room()):
            self.mem[key] = value
            return
        self._spill(key, value, None)

    def insert(self, key: str, value: V) -> None:
        """Add a key the caller has just found missing (``get`` gave None): no second look on disk."""
        if self.disk is None and self._room():
            self.mem[key] = value
        else:
            self._spill(key, value, True)

    def _spill(self, key: str, value: V, new: bool | None) -> None:
        if self.disk is None:
            self.disk = _Disk()
        raw = _TRUE if value is True else pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)  # a set's members
        self.disk.put(key, raw, new)

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

    def sorted_items(self) -> Iterator[tuple[str, V]]:
        """The entries in key order, streamed: the spilled part comes from disk in order, never as one list."""
        mem = sorted(self.mem.items())
        if self.disk is None:
            yield from mem
            return
        spilled = ((k, pickle.loads(v)) for k, v in self.disk.items())
        yield from heapq.merge(mem, spilled, key=operator.itemgetter(0))

    def __len__(self) -> int:
        return len(self.mem) + (self.disk.count if self.disk is not None else 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (dict, SpillMap)) and dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        # what arrives is a shard's state on its way into the receiver's own indexes: it stays in memory
        # (bounded by the shard) and does not draw on the receiver's budget, which its own indexes need
        items = list(self.items())
        return (SpillMap, (items, max(1, len(items))))

    @property
    def spilled(self) -> bool:
        return self.disk is not None


class SpillSet:
    """A set of str with at most ``limit`` members in memory (a ``SpillMap`` to nothing)."""

    def __init__(self, members: Iterable[str] = (), limit: int | None = None) -> None:
        self.map: SpillMap[bool] = SpillMap(limit=limit)
        self.hot: dict[object, None] = {}  # members lately found on disk (a resident's key, referred to again)
        self |= members

    def add(self, key: str) -> None:
        m = self.map
        if key in m.mem or key in self.hot:
            return
        if m.disk is None:
            if m._room():
                m.mem[key] = True
                return
        elif m.disk.get(key) is not None:
            return
        m._spill(key, True, True)  # looked for just now: not there

    def __contains__(self, key: object) -> bool:
        if key in self.hot or key in self.map.mem:
            return True
        if key not in self.map:
            return False
        if len(self.hot) >= HOT:
            del self.hot[next(iter(self.hot))]
        self.hot[key] = None
        return True

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
        members = list(self)
        return (SpillSet, (members, max(1, len(members))))  # in memory on arrival, as SpillMap's

    @property
    def spilled(self) -> bool:
        return self.map.spilled
