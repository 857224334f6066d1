"""Mutual TLS: the client presents its certificate and trusts the given CA (real TLS on loopback)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.serving import make_server

from fixtures.reference_server import TOKEN, ReferenceApi
from harness.evidence import EvidenceStore, Redactor
from harness.targets.http_client import ClientConfig, FhirClient


def _cert(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False,
          ip: str | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    data = cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        data += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    path.write_bytes(data)
    return path


def test_mutual_tls(tmp_path: Path) -> None:
    ca = _cert("test CA", None, ca=True)
    server_cert = _cert("127.0.0.1", ca, ip="127.0.0.1")
    client_cert = _cert("supplier test client", ca)
    ca_file = _write(tmp_path / "ca.pem", ca[0])
    server_file = _write(tmp_path / "server.pem", *server_cert)
    client_file = _write(tmp_path / "client.pem", *client_cert)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_file)
    context.load_verify_locations(ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    server = make_server("127.0.0.1", 0, ReferenceApi(residents=2), threaded=True, ssl_context=context)

    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.port}"
    try:
        def client(cert: str | None) -> FhirClient:
            cfg = ClientConfig(base_url=url, token=TOKEN, cert=cert, ca=str(ca_file), allow_insecure_local=True,
                               read_timeout=5, retries=0)
            return FhirClient(cfg, EvidenceStore(Redactor()))

        with_cert = client(str(client_file)).request("GET", "metadata")
        assert with_cert.error is None and with_cert.status == 200
        without = client(None).request("GET", "metadata")
        assert without.status is None and without.error is not None and "connection failed" in without.error
    finally:
        server.shutdown()
        server.server_close()
