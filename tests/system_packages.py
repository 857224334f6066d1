"""What a test needs from the system, installed from Debian's packages when it is missing and the machine
allows it (root, apt); otherwise the reason the caller skips with."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable


def find_or_install(find: Callable[[], str | None], package: str, what: str) -> tuple[str | None, str]:
    """``find()``'s answer, after installing ``package`` if it found nothing; else (None, why not)."""
    found = find()
    if found:
        return found, ""
    if os.environ.get("CARE_ASSURE_NO_APT") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, f"{what} is not installed and cannot be installed here (not root, or no apt)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "install", "-y", "-q", package], ["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", package]):
        try:
            subprocess.run(step, check=False, capture_output=True, timeout=900, env=env)
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"installing Debian's {package} failed: {exc}"
        found = find()
        if found:
            return found, ""
    return None, f"installing Debian's {package} did not give {what}"
