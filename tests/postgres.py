"""A throwaway PostgreSQL server on a loopback port, from the system's packages.

Used by the registry tests; when no server binaries can be found or installed, the caller skips
with the reason this module gives.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests import system_packages


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def find_or_install() -> tuple[Path | None, str]:
    """The server binaries' directory, installing Debian's postgresql if we may; else a reason."""
    def found() -> str | None:
        bin_dir = _bin_dir()
        return str(bin_dir) if bin_dir else None

    where, reason = system_packages.find_or_install(found, "postgresql", "the PostgreSQL server (initdb)")
    return (Path(where), "") if where else (None, reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(bin_dir: Path) -> Iterator[str]:
    """Start a server in a fresh directory (trust auth, loopback only) and yield its SQLAlchemy URL.

    The directory is made outside pytest's temporary tree, which only root may enter: as root the
    server runs as the ``postgres`` user, which must own its directory.
    """
    base = Path(tempfile.mkdtemp(prefix="care-assure-pg-"))
    try:
        with _running(bin_dir, base) as url:
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def _running(bin_dir: Path, base: Path) -> Iterator[str]:
    data, sock = base / "data", base / "sock"
    data.mkdir(parents=True)
    sock.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(base, "postgres")
        for p in (data, sock):
            shutil.chown(p, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    user = "postgres" if run_as else os.environ.get("USER", "postgres")
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w",
                    "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True, timeout=60)
