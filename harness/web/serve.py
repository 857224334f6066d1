"""Running the workspace: a uvicorn server on a socket bound here (so port 0 works and is reported)."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import uvicorn

from harness.errors import ConfigurationError
from harness.web.app import Workspace, create_app

SECRET_ENV = "CARE_ASSURE_SESSION_SECRET"


def session_secret() -> str:
    """The cookie-signing secret: from the environment (sessions survive restarts), else new each start."""
    given = os.environ.get(SECRET_ENV, "")
    if given and len(given) < 32:
        raise ConfigurationError(f"${SECRET_ENV} must have at least 32 characters")
    return given or secrets.token_urlsafe(48)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def server(workspace: Workspace, sock: socket.socket, *, https: bool = False) -> uvicorn.Server:
    app = create_app(workspace, session_secret(), https=https)
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False, timeout_keep_alive=5, limit_concurrency=200)
    return uvicorn.Server(config)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def write_url(path: Path | None, url: str) -> None:
    if path is not None:
        path.write_text(url + "\n", encoding="utf-8")
