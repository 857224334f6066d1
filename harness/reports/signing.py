"""Ed25519 signatures over RFC 8785 canonical JSON, for reports and evidence manifests.

A signed document carries a ``signature`` member. What is signed is a small block: who signed,
with which key, when, the SHA-256 of the RFC 8785 form of the document without ``signature``,
and the SHA-256 of each top-level section. The block's own RFC 8785 form is what Ed25519 signs,
so verification needs only the public key, and a mismatch can be named section by section.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import ConfigurationError

ALGORITHM = "Ed25519"
SIGNATURE = "signature"


def canonical(value: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of a JSON value."""
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)[:16]


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def generate_keys(directory: Path, name: str) -> KeyPair:
    """Write NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub; never overwrite an existing key."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigurationError(f"{path}: already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    private_path.chmod(0o600)  # whatever the umask
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return KeyPair(private_path, public_path, key_id(key.public_key()))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"{path}: the signing key is readable by other users; chmod 600 it first")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the public key ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{path}: not an Ed25519 public key")
    return key


def _unsigned(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != SIGNATURE}


def _digests(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    return sha256_hex(canonical(body)), {k: sha256_hex(canonical(v)) for k, v in sorted(body.items())}


def sign_document(doc: dict[str, Any], key: Ed25519PrivateKey, signer: str,
                  signed_at: dt.datetime | None = None) -> dict[str, Any]:
    """Return a copy of ``doc`` with a ``signature`` member (any earlier signature is replaced)."""
    body = _unsigned(doc)
    whole, sections = _digests(body)
    block = {"signer": signer, "algorithm": ALGORITHM, "key_id": key_id(key.public_key()),
             "signed_at": (signed_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
             "report_sha256": whole, "sections": sections}
    value = base64.b64encode(key.sign(canonical(block))).decode("ascii")
    return {**body, SIGNATURE: {**block, "value": value}}


def verify_document(doc: dict[str, Any], public_key: Ed25519PublicKey) -> list[str]:
    """Problems with the document's signature, each naming what does not match; [] when it verifies."""
    sig = doc.get(SIGNATURE)
    if not isinstance(sig, dict):
        return ["not signed: the document has no signature"]
    block = {k: v for k, v in sig.items() if k != "value"}
    problems = []
    if sig.get("algorithm") != ALGORITHM:
        problems.append(f"signature algorithm is {sig.get('algorithm')!r}, expected {ALGORITHM}")
    expected_id = key_id(public_key)
    if sig.get("key_id") != expected_id:
        problems.append(f"signed with key {sig.get('key_id')}, not with the given public key {expected_id}")
    try:
        public_key.verify(base64.b64decode(str(sig.get("value", "")), validate=True), canonical(block))
    except (InvalidSignature, ValueError):
        problems.append("the signature block does not verify: the signer, date or digests were changed, "
                        "or another key signed it")
    whole, sections = _digests(_unsigned(doc))
    signed_sections = sig.get("sections")
    if not isinstance(signed_sections, dict):
        signed_sections = {}
    for name in sorted(set(sections) | set(signed_sections)):
        if name not in signed_sections:
            problems.append(f"section '{name}' was added after signing")
        elif name not in sections:
            problems.append(f"section '{name}' was removed after signing")
        elif sections[name] != signed_sections[name]:
            problems.append(f"section '{name}' was changed after signing")
    if whole != sig.get("report_sha256") and not any("section" in p for p in problems):
        problems.append("the document's canonical SHA-256 does not match the signed digest")
    return problems
