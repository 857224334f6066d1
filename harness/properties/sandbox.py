"""Leaving a sandbox as it was found: delete every record a property run or replay created.

Property examples create Patients tagged with a probe identifier; if they were left behind,
the next conformance run would read (and judge) them. After each property rule and each
replay, every record the client's POSTs created is deleted again, newest first, each DELETE
kept in the evidence (rule ``cleanup``), with a summary record saying what was removed and
what could not be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Cleanup:
    deleted: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)  # the example itself deleted them
    left: list[str] = field(default_factory=list)  # could not be deleted: "Type/id (status or error)"

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "already_gone": self.already_gone, "left_behind": self.left}

    def describe(self) -> str:
        text = f"deleted the {len(self.deleted)} record(s) it created"
        if self.already_gone:
            text += f" ({len(self.already_gone)} more were already deleted by the example)"
        if self.left:
            text += f"; could not delete {len(self.left)}: {', '.join(self.left[:5])}"
        return text


def clean_up(client: Any) -> Cleanup:
    """Delete what ``client`` created (newest first) and forget it; say what happened."""
    done = Cleanup()
    while client.created:
        rtype, rid = client.created.pop()
        name = f"{rtype}/{rid}"
        result = client.request("DELETE", name, rule="cleanup")
        if result.error:
            done.left.append(f"{name} ({result.error})")
        elif result.status in (200, 202, 204):
            done.deleted.append(name)
        elif result.status in (404, 410):
            done.already_gone.append(name)
        else:
            done.left.append(f"{name} (DELETE answered {result.status})")
    return done
