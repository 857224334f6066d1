"""Text fit for XML and HTML: every character XML 1.0 forbids is written as its code point instead.

Findings can carry what the target sent (a control character in a name, an element value); the
JUnit and HTML renderings must stay valid documents whatever it was.
"""

from __future__ import annotations

import re
from typing import Any

_NOT_XML = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ufffe\\uffff\\ud800-\\udfff]")


def xml_safe(text: str) -> str:
    """``a\\x01b`` becomes ``a\\\\x01b``: visible, and valid in XML and HTML."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def safe_value(value: Any) -> Any:
    """Jinja's ``finalize``: strings made safe, anything else as it is."""
    return xml_safe(value) if isinstance(value, str) else value
