"""A local Spark for the tests: PySpark (the `spark` extra, in `dev`) and a Java runtime from Debian's packages."""

from __future__ import annotations

import shutil

from tests.system_packages import find_or_install


def find_or_install_java() -> tuple[str | None, str]:
    """The java binary, installing Debian's headless JRE when missing and allowed; else why not."""
    return find_or_install(lambda: shutil.which("java"), "openjdk-17-jre-headless", "a Java runtime for Spark")
