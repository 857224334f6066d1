"""Evidence bundles: a zip of a run's reports and evidence with a signed manifest of SHA-256 hashes.

The manifest (``MANIFEST.json``, RFC 8785 bytes) lists every other file in the zip with its
SHA-256 and size; it is signed like a report (see ``signing``). Verification re-hashes every
member and names each file that changed, is missing or was added.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import ConfigurationError
from harness.reports.signing import SIGNATURE, canonical, sign_document, verify_document

MANIFEST = "MANIFEST.json"
BUNDLE_SCHEMA = "care-assure/evidence-bundle/v1"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same files give the same zip


def hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def build_bundle(source: Path, out: Path, *, key: Ed25519PrivateKey | None = None, signer: str = "",
                 created: dt.datetime | None = None) -> dict[str, Any]:
    """Zip every file under ``source`` (except ``out`` itself) with its manifest; return the manifest."""
    if not source.is_dir():
        raise ConfigurationError(f"{source}: not a directory of reports")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.resolve() != out.resolve())
    root = source.resolve()
    for path in files:
        if not path.resolve().is_relative_to(root):
            raise ConfigurationError(f"{path}: a symbolic link out of {source}; a bundle holds only the run's own "
                                     "files")
    if not files:
        raise ConfigurationError(f"{source}: no files to bundle")
    entries = {}
    for path in files:
        sha, size = hash_file(path)
        entries[path.relative_to(source).as_posix()] = {"sha256": sha, "size": size}
    manifest: dict[str, Any] = {"schema": BUNDLE_SCHEMA, "files": entries,
                                "created": (created or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")}
    if key is not None:
        manifest = sign_document(manifest, key, signer)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(zipfile.ZipInfo(MANIFEST, _EPOCH), canonical(manifest))
            for path in files:
                info = zipfile.ZipInfo(path.relative_to(source).as_posix(), _EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                with path.open("rb") as src, zf.open(info, "w") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        dst.write(chunk)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written bundle is left behind
        raise
    return manifest


def read_manifest(bundle: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(bundle) as zf:
            data: dict[str, Any] = orjson.loads(zf.read(MANIFEST))
            return data
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigurationError(f"{bundle}: not a readable evidence bundle ({exc})") from None
    except KeyError:
        raise ConfigurationError(f"{bundle}: has no {MANIFEST}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"{bundle}: {MANIFEST} is not JSON ({exc})") from None


def verify_bundle(bundle: Path, public_key: Ed25519PublicKey | None) -> list[str]:
    """Problems with the bundle, each naming the file; [] when every hash (and the signature) matches."""
    manifest = read_manifest(bundle)
    problems = []
    if public_key is not None:
        problems += [f"{MANIFEST}: {p}" for p in verify_document(manifest, public_key)]
    elif SIGNATURE not in manifest:
        problems.append(f"{MANIFEST}: not signed")
    listed: dict[str, Any] = manifest.get("files", {})
    seen = set()
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            if info.filename == MANIFEST or info.is_dir():
                continue
            seen.add(info.filename)
            expected = listed.get(info.filename)
            if expected is None:
                problems.append(f"{info.filename}: not in the manifest (added after bundling)")
                continue
            digest = hashlib.sha256()
            try:
                with zf.open(info) as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
            except (zipfile.BadZipFile, OSError) as exc:
                problems.append(f"{info.filename}: cannot be read from the bundle ({exc})")
                continue
            if digest.hexdigest() != expected.get("sha256"):
                problems.append(f"{info.filename}: SHA-256 differs from the manifest (changed after bundling)")
    problems += [f"{name}: listed in the manifest but missing from the bundle" for name in sorted(set(listed) - seen)]
    return problems
