"""A local Spark for the tests: PySpark (the `spark` extra, in `dev`) and a Java runtime from Debian's packages."""

from __future__ import annotations

import os
import shutil
import subprocess


def find_or_install_java() -> tuple[str | None, str]:
    """The java binary, installing Debian's headless JRE when missing and allowed; else why not."""
    found = shutil.which("java")
    if found:
        return found, ""
    if os.environ.get("CARE_ASSURE_NO_APT") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "no Java runtime for Spark, and none can be installed here (not root, or no apt)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "install", "-y", "-q", "openjdk-17-jre-headless"], ["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "openjdk-17-jre-headless"]):
        subprocess.run(step, check=False, capture_output=True, timeout=900, env=env)
        if shutil.which("java"):
            return shutil.which("java"), ""
    return None, "installing Debian's openjdk-17-jre-headless failed"
