"""Apache Spark backend (`run --engine spark`): the same engine in every task, merged as a tree, same report.

Local export files (every format) are cut into the newline-aligned shards ``--jobs`` uses, dealt
to a few tasks by size, and each task runs the one-process engine on its shards (on a cluster
the path must be on a file system every executor mounts). NDJSON under a URL Spark reads
(``hdfs://``, ``s3a://``, ``file://``) is read by Spark itself: lines split at ``\n`` only, as
the local reader does (bytes that are not UTF-8 reach Python replaced, so such a line is a read
error), a counting pass gives each partition the line it starts on, and each partition runs
the same reader, rules and caps. Every task sends back plain data; the partial states are
merged with ``treeReduce`` on the executors (merging is associative and commutative, see
``harness.engine.RuleState``), so the report is the same bytes as ``--jobs 1`` apart from the
run id and times. Dataset-level rules (references resolve, unique NHS numbers, duplicate
ids, a care plan per resident, referenced organisations) run as Spark joins and aggregations
on exports of 64 MB or more: their keyed contents (every resource key, reference, key value)
are reduced by key across the cluster and the driver receives only what becomes a finding and
the totals. Smaller exports merge those contents in the tree, which costs fewer stages.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.bundle import EXAMPLES, DuplicateIdAccumulator
from harness.checks.dataset import (
    ExistsPerAccumulator,
    ReferenceAccumulator,
    ReferencedAccumulator,
    UniqueAccumulator,
    merge_pending,
    reference_keys,
)
from harness.checks.registry import subject_order, where_order
from harness.engine import Run
from harness.errors import ConfigurationError, Problem
from harness.parallel import NDJSON, PlanInputs, absorb, grouped, plan_of, portable, run_shards, shards_of
from harness.plan import Plan
from harness.results import InputFile, Location
from harness.targets.base import Located, ReadError
from harness.targets.export import ExportTarget
from harness.targets.readers import MAX_LINE_BYTES, ndjson_line

_URL = re.compile(r"^([a-z][a-z0-9+.-]*):/+(.*)$")
TREE_DEPTH = 3
JOIN_MIN_BYTES = 64 * 1024 * 1024  # below this the dataset rules' contents are small: merged in the tree
SHARDS_PER_CORE = 2


def export_url(path: Path | str) -> str | None:
    """The URL an ``--export`` value names (a Path collapses ``//``), or None for a local path."""
    text = str(path)
    found = _URL.match(text)
    if found is None or len(found[1]) == 1:  # "c:/…" is a drive, not a scheme
        return None
    scheme, rest = found[1], found[2]
    return f"file:///{rest}" if scheme == "file" else f"{scheme}://{rest}"


@dataclass(frozen=True, slots=True)
class SparkFile:
    url: str  # what Spark reads
    display: str  # how the report names it (as the local engine would)
    size: int


class SparkExport:
    """An export read by Spark: local paths (every format) or URLs (NDJSON)."""

    kind = "export"
    engine = "spark"

    def __init__(self, paths: Iterable[Path | str], csv_maps: tuple[Path, ...] = (), master: str | None = None,
                 min_partitions: int | None = None, join_min_bytes: int = JOIN_MIN_BYTES) -> None:
        self.urls = [u for p in paths if (u := export_url(p))]
        self.local = [Path(p) for p in paths if export_url(p) is None]
        self.csv_maps = tuple(csv_maps)
        self.master = master
        self.min_partitions = min_partitions  # per file; None: Spark's default (at most 2)
        self.join_min_bytes = join_min_bytes  # from this size, dataset rules run as joins across the cluster
        self.local_target = ExportTarget(self.local, csv_maps=self.csv_maps) if self.local else None
        self._remote: list[SparkFile] | None = None
        self._hashes: dict[str, tuple[str, int]] = {}

    def items(self, progress: Any = None) -> Iterator[Located | ReadError]:
        """Read in this process (what the engine does without Spark): local paths only."""
        if self.urls:
            raise ConfigurationError("remote export paths are read through Spark (run_spark), not in this process")
        if self.local_target is not None:
            yield from self.local_target.items(progress)

    def total_bytes(self) -> int:
        return 0  # Spark shows its own progress; the harness does not draw a bar

    def local_files(self) -> list[tuple[Path, str]]:
        t = self.local_target
        return [(p, t.display(p)) for p in t.files()] if t else []

    def remote_files(self, session: Any) -> list[SparkFile]:
        if self._remote is None:
            self._remote = [f for url in self.urls for f in _list(session, url)]
            bad = [f.display for f in self._remote if Path(f.display).suffix.lower() not in NDJSON]
            if bad:
                raise ConfigurationError([Problem("Spark reads NDJSON (.ndjson, .jsonl) from remote paths; copy "
                                                  "Bundle, XML, zip and CSV files locally", name) for name in bad])
        return self._remote

    def remember_hashes(self, hashes: dict[str, tuple[str, int]]) -> None:
        self._hashes.update(hashes)

    def inputs(self) -> list[InputFile]:
        local = self.local_target.inputs() if self.local_target else []
        remote = [InputFile(f.display, *self._hashes[f.url]) for f in self._remote or [] if f.url in self._hashes]
        return local + remote


def _list(session: Any, url: str) -> list[SparkFile]:
    """The files under a URL through Hadoop's file system API, named as the local engine names them."""
    jvm, conf = session.sparkContext._jvm, session.sparkContext._jsc.hadoopConfiguration()
    root = jvm.org.apache.hadoop.fs.Path(url)
    fs = root.getFileSystem(conf)
    if not fs.exists(root):
        raise ConfigurationError(Problem("export path does not exist", url))
    status = fs.getFileStatus(root)
    if not status.isDirectory():
        return [SparkFile(status.getPath().toString(), root.getName(), status.getLen())]
    base = status.getPath().toString().rstrip("/")
    found, files = fs.listFiles(root, True), []
    while found.hasNext():
        f = found.next()
        full = f.getPath().toString()
        relative = full[len(base):].lstrip("/")
        if any(part.startswith(".") for part in relative.split("/")):
            continue
        files.append(SparkFile(full, f"{root.getName()}/{relative}", f.getLen()))
    return sorted(files, key=lambda f: f.display)


def _session(master: str | None) -> Any:
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 - pyspark is the optional `spark` extra
    except ImportError:
        raise ConfigurationError("--engine spark needs PySpark: pip install 'care-assure[spark]' (and a Java 17+ "
                                 "runtime)") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # local executors run this interpreter
    if not master or master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # one machine: loopback only
    builder = (SparkSession.builder.appName("care-assure").config("spark.ui.showConsoleProgress", "false")
               .config("spark.python.worker.reuse", "true").config("spark.log.level", "ERROR"))
    if master:
        builder = builder.master(master)
    elif not os.environ.get("SPARK_HOME"):
        builder = builder.master("local[*]")
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - no Java, a master that does not answer: a usage error, said plainly
        raise ConfigurationError(f"Spark could not start{f' on {master}' if master else ''}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext._jsc.hadoopConfiguration().set("textinputformat.record.delimiter", "\n")
    return session


def _count(rows: Iterator[bytes]) -> Iterator[int]:
    yield sum(1 for _ in rows)


def _ndjson_partition(inputs: PlanInputs, starts: list[tuple[str, int]], index: int,
                      rows: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """In an executor: partition ``index`` (part of one NDJSON file, its first line known) through the engine."""
    display, first_line = starts[index]
    run = Run(plan_of(inputs))
    run.feed(_spark_lines(rows, display, first_line))
    yield portable(run)


REPLACED = "\ufffd".encode()


def _spark_lines(rows: Iterator[bytes], display: str, first_line: int) -> Iterator[Located | ReadError]:
    """Lines as Spark gives them: the local reader's checks, and bytes Spark could not keep said as such.

    Spark hands Python each line re-encoded from Java text, so bytes that were not UTF-8 arrive as
    U+FFFD; such a line is a read error here (the local engine names the bad bytes instead).
    """
    for offset, line in enumerate(rows):
        lineno = first_line + offset
        if len(line) > MAX_LINE_BYTES:
            item = ndjson_line(None, display, lineno)
        elif REPLACED in line:
            item = ReadError(Location(display, lineno), "line holds U+FFFD: bytes that are not UTF-8 were replaced "
                                                        "when Spark read the file (or the file holds that character); "
                                                        "read it with the local engine to see the bytes")
        else:
            item = ndjson_line(line, display, lineno)
        if item is not None:
            yield item


def _merge(inputs: PlanInputs, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    run = Run(plan_of(inputs))
    absorb(run, a)
    absorb(run, b)
    return portable(run)


# -- dataset-level rules as joins and aggregations ---------------------------------------------------------
#
# The tree merges every rule's counts and capped findings; the large part of a dataset-level rule's
# state (every resource key, every reference, every key value) is taken out of it (``_slim``) and
# reduced by key across the cluster instead, so the driver receives only what becomes a finding.

BIG: dict[type, dict[str, Any]] = {  # what is taken out of each accumulator, and its empty value
    ReferenceAccumulator: {"known": set, "pending": dict},
    DuplicateIdAccumulator: {"first": dict, "again": list, "count": int},
    UniqueAccumulator: {"seen": dict},
    ExistsPerAccumulator: {"subject_list": dict, "aliases": dict, "hits": dict},
    ReferencedAccumulator: {"failing": dict, "passing": set, "aliases": dict, "referenced": set},
}


def _slim(kinds: dict[str, type], part: dict[str, Any]) -> dict[str, Any]:
    """A task's state without the keyed contents of its dataset rules (those go through ``_reduce``)."""
    states = dict(part["states"])
    for rid, kind in kinds.items():
        state, acc = states[rid]
        states[rid] = (state, {**acc, **{name: empty() for name, empty in BIG[kind].items()}})
    return {**part, "states": states}


def _acc(rid: str, part: dict[str, Any]) -> dict[str, Any]:
    acc: dict[str, Any] = part["states"][rid][1]
    return acc


def _once(x: Any, _y: Any) -> Any:
    return x


def _add(x: int, y: int) -> int:
    return x + y


def _tagged(tag: tuple[str, str], rdd: Any) -> Any:
    return rdd.map(lambda value: (tag, value))


def _total(tag: tuple[str, str], rdd: Any) -> Any:
    """How many elements ``rdd`` has, as one tagged element (none when it is empty)."""
    return rdd.map(lambda _x: (tag, 1)).reduceByKey(_add)


def _references(rid: str, accs: Any) -> list[Any]:
    """Dangling references: the pending ones no key of which any task saw (a join on candidate keys)."""
    known = accs.flatMap(lambda a: a["known"]).map(lambda k: (k, True)).reduceByKey(_once)
    pending = accs.flatMap(lambda a: a["pending"].items()).reduceByKey(merge_pending)
    candidates = pending.flatMap(lambda rp: [(k, rp[0]) for k in reference_keys(rp[0])])
    resolved = candidates.join(known).map(lambda kv: (kv[1][0], True)).reduceByKey(_once)
    return [_tagged((rid, "pending"), pending.subtractByKey(resolved))]


def _first_of_key(a: tuple[Any, int, list[Any]], b: tuple[Any, int, list[Any]]) -> tuple[Any, int, list[Any]]:
    """Per key: the least occurrence, how many tasks saw it, and the least of the other occurrences."""
    first, other = (a, b) if where_order(a[0]) <= where_order(b[0]) else (b, a)
    extras = sorted([*first[2], *other[2], other[0]], key=where_order)[:EXAMPLES]
    return first[0], a[1] + b[1], extras


def _least_examples(a: list[Any], b: list[Any]) -> list[Any]:
    return sorted(a + b, key=lambda kw: (where_order(kw[1]), kw[0]))[:EXAMPLES]


def _duplicate_ids(rid: str, accs: Any) -> list[Any]:
    """Keys seen in more than one task: the least occurrence stays first, the others are duplicates."""
    firsts = accs.flatMap(lambda a: a["first"].items()).map(lambda ks: (ks[0], (ks[1], 1, [])))
    shared = firsts.reduceByKey(_first_of_key).filter(lambda kv: kv[1][1] > 1)
    extras = shared.flatMap(lambda kv: [(kv[0], s) for s in kv[1][2]])
    again = extras.union(accs.flatMap(lambda a: a["again"])).map(lambda ks: ((rid, "again"), [ks]))
    count = shared.map(lambda kv: kv[1][1] - 1).union(accs.map(lambda a: a["count"]))
    return [again.reduceByKey(_least_examples), count.map(lambda n: ((rid, "count"), n)).reduceByKey(_add)]


def _unique(rid: str, accs: Any) -> list[Any]:
    """Key values shared by more than one subject, with all their subjects."""
    seen = accs.flatMap(lambda a: a["seen"].items()).reduceByKey(lambda x, y: x + y)
    return [_tagged((rid, "seen"), seen.filter(lambda kv: len(kv[1]) > 1))]


def _least_subject(a: Any, b: Any) -> Any:
    return a if subject_order(a) <= subject_order(b) else b


def _aliases(accs: Any) -> Any:
    return accs.flatMap(lambda a: a["aliases"].items()).reduceByKey(min)


def _exists_per(rid: str, accs: Any, minimum: int) -> list[Any]:
    """Subjects referred to fewer than ``minimum`` times: hits joined to subjects through their aliases."""
    subjects = accs.flatMap(lambda a: a["subject_list"].items()).reduceByKey(_least_subject)
    hits = accs.flatMap(lambda a: a["hits"].items()).reduceByKey(_add)
    per_subject = hits.join(_aliases(accs)).map(lambda kv: (kv[1][1], kv[1][0])).reduceByKey(_add)
    judged = subjects.leftOuterJoin(per_subject).map(lambda kv: (kv[0], kv[1][0], kv[1][1] or 0))
    return [_tagged((rid, "failing"), judged.filter(lambda x: x[2] < minimum)), _total((rid, "total"), subjects)]


def _referenced(rid: str, accs: Any) -> list[Any]:
    """Failing subjects that something refers to: referenced keys joined to subjects through their aliases."""
    referenced = accs.flatMap(lambda a: a["referenced"]).map(lambda k: (k, True)).reduceByKey(_once)
    named = referenced.join(_aliases(accs)).map(lambda kv: (kv[1][1], True)).reduceByKey(_once)
    failing = accs.flatMap(lambda a: a["failing"].items()).reduceByKey(_least_subject)
    shown = failing.join(named).map(lambda kv: (kv[0], kv[1][0]))
    return [_tagged((rid, "failing"), shown), _total((rid, "named"), named)]


def _keyed(kind: type, rid: str, accumulator: Any, accs: Any) -> list[Any]:
    """The tagged results of one dataset rule's join, to collect with every other rule's in one job."""
    if kind is ReferenceAccumulator:
        return _references(rid, accs)
    if kind is DuplicateIdAccumulator:
        return _duplicate_ids(rid, accs)
    if kind is UniqueAccumulator:
        return _unique(rid, accs)
    if kind is ExistsPerAccumulator:
        return _exists_per(rid, accs, accumulator.minimum)
    return _referenced(rid, accs)


def _assemble(kind: type, got: dict[str, list[Any]]) -> dict[str, Any]:
    """The accumulator contents the driver needs for one rule: what becomes a finding, and the totals."""
    if kind is ReferenceAccumulator:
        return {"known": set(), "pending": dict(got.get("pending", []))}
    if kind is DuplicateIdAccumulator:
        return {"first": {}, "again": (got.get("again") or [[]])[0], "count": sum(got.get("count", []))}
    if kind is UniqueAccumulator:
        return {"seen": dict(got.get("seen", []))}
    failing = got.get("failing", [])
    if kind is ExistsPerAccumulator:
        return {"subject_list": {k: s for k, s, _n in failing}, "aliases": {k: k for k, _s, _n in failing},
                "hits": {k: n for k, _s, n in failing if n}, "counted": sum(got.get("total", [])) - len(failing)}
    return {"failing": dict(failing), "passing": set(), "aliases": {k: k for k, _s in failing},
            "referenced": {k for k, _s in failing}, "counted": sum(got.get("named", [])) - len(failing)}


def _sha256(pair: tuple[str, Any]) -> tuple[str, tuple[str, int]]:
    url, data = pair
    return url, (hashlib.sha256(data).hexdigest(), len(data))


def run_spark(plan: Plan, target: SparkExport, inputs: PlanInputs) -> Run:
    """The export through Spark: every partition in the engine, merged by ``treeReduce``, into one run."""
    session = _session(target.master)
    sc = session.sparkContext
    run = Run(plan)
    if target.local_target is not None:
        run.feed(target.local_target.refused())
    remote = target.remote_files(session)
    parts = []
    if target.local_target is not None:  # local files: newline-aligned shards, dealt to a few tasks by size
        tasks = SHARDS_PER_CORE * sc.defaultParallelism
        groups = grouped(shards_of(target.local_target, tasks), tasks)
        parts.append(sc.parallelize(groups, len(groups)).map(functools.partial(run_shards, inputs)))
    if remote:  # one RDD of every remote file's lines; a counting pass gives each partition its first line
        files = [sc.textFile(f.url, use_unicode=False, minPartitions=target.min_partitions) for f in remote]
        lines = sc.union(files)
        counts = lines.mapPartitions(_count).collect()
        starts: list[tuple[str, int]] = []
        for rdd, f in zip(files, remote, strict=True):
            line = 1
            for _ in range(rdd.getNumPartitions()):
                starts.append((f.display, line))
                line += counts[len(starts) - 1]
        parts.append(lines.mapPartitionsWithIndex(functools.partial(_ndjson_partition, inputs, starts)))
    if remote:  # the report pins every input by hash: the executors read the remote files once more for it
        hashes = dict(sc.binaryFiles(",".join(f.url for f in remote)).map(_sha256).collect())
        unhashed = [f.display for f in remote if f.url not in hashes]
        if unhashed:  # a report pins every input: one that cannot be pinned is not reported on
            raise ConfigurationError([Problem("Spark listed this file but could not read it whole to hash it", name)
                                      for name in unhashed])
        target.remember_hashes(hashes)
    if parts:
        tasks = sc.union(parts).persist()
        size = sum(p.stat().st_size for p, _ in target.local_files()) + sum(f.size for f in remote)
        kinds = {rid: type(state.accumulator) for rid, state in run.states.items()
                 if type(state.accumulator) in BIG} if size >= target.join_min_bytes else {}
        merged = tasks.map(functools.partial(_slim, kinds)).treeReduce(functools.partial(_merge, inputs),
                                                                          depth=TREE_DEPTH)
        results = [r for rid, kind in kinds.items()
                   for r in _keyed(kind, rid, run.states[rid].accumulator, tasks.map(functools.partial(_acc, rid)))]
        got: dict[str, dict[str, list[Any]]] = {rid: {} for rid in kinds}
        for (rid, name), value in (sc.union(results).collect() if results else []):
            got[rid].setdefault(name, []).append(value)
        for rid, kind in kinds.items():
            state, acc = merged["states"][rid]
            merged["states"][rid] = (state, {**acc, **_assemble(kind, got[rid])})
        tasks.unpersist()
        absorb(run, merged)
    return run
