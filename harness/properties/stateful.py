"""A rule-based state machine against the API: create, update, read, search, delete, history.

The machine keeps a model of what the server should hold and checks every answer against
it. Each executed step is recorded in plain data (patients are named by the order they were
created, not by server ids), so the shrunk program is the counterexample and ``replay``
re-runs it step by step with ``run_program``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule

from harness.properties.api import PROBE_SYSTEM
from harness.properties.strategies import name_parts


@dataclass
class _Record:
    id: str
    tag: str
    family: str
    versions: int = 1
    deleted: bool = False


@dataclass
class ProgramState:
    client: Any
    records: list[_Record] = field(default_factory=list)


class StepFailed(AssertionError):
    pass


def apply_step(state: ProgramState, step: dict[str, Any]) -> None:
    """Run one step against the API and check the answer against the model (raise StepFailed)."""
    c = state.client
    op = step["op"]
    if op == "create":
        tag = uuid.uuid4().hex
        body = {"resourceType": "Patient", "name": [{"family": step["family"]}],
                "identifier": [{"system": PROBE_SYSTEM, "value": tag}]}
        res = c.request("POST", "Patient", body=body, rule="property")
        _expect(res.status in (200, 201) and isinstance(res.json, dict) and res.json.get("id"),
                f"create answered {res.status}", res)
        state.records.append(_Record(str(res.json["id"]), tag, step["family"]))
        return
    record = state.records[step["ref"]]
    if op == "read":
        res = c.request("GET", f"Patient/{record.id}", rule="property")
        if record.deleted:
            _expect(res.status in (404, 410), f"read of a deleted record answered {res.status}", res)
        else:
            family = ((res.json or {}).get("name") or [{}])[0].get("family")
            _expect(res.status == 200 and family == record.family,
                    f"read answered {res.status} with a family name other than the last one written", res)
    elif op == "update" and not record.deleted:
        body = {"resourceType": "Patient", "id": record.id, "name": [{"family": step["family"]}],
                "identifier": [{"system": PROBE_SYSTEM, "value": record.tag}]}
        res = c.request("PUT", f"Patient/{record.id}", body=body, rule="property",
                        headers={"If-Match": f'W/"{record.versions}"'})
        _expect(res.status == 200, f"update with the current version answered {res.status}", res)
        record.family, record.versions = step["family"], record.versions + 1
    elif op == "search":
        res = c.request("GET", f"Patient?identifier={PROBE_SYSTEM}|{record.tag}", rule="property")
        ids = [e.get("resource", {}).get("id") for e in (res.json or {}).get("entry", [])]
        want = [] if record.deleted else [record.id]
        _expect(ids == want, f"search found {len(ids)} record(s), the model holds {len(want)}", res)
    elif op == "delete" and not record.deleted:
        res = c.request("DELETE", f"Patient/{record.id}", rule="property")
        _expect(res.status in (200, 202, 204), f"delete answered {res.status}", res)
        record.deleted = True
    elif op == "history" and not record.deleted:
        res = c.request("GET", f"Patient/{record.id}/_history", rule="property")
        entries = (res.json or {}).get("entry", [])
        _expect(res.status == 200 and len(entries) == record.versions,
                f"_history holds {len(entries)} version(s), the model {record.versions}", res)


def _expect(ok: Any, message: str, res: Any) -> None:
    if res.error:
        raise ConnectionError(res.error)
    if not ok:
        raise StepFailed(f"{message} ({res.where})")


def run_program(client: Any, steps: list[dict[str, Any]]) -> str | None:
    """Replay a recorded program; the failure message, or None when every step holds."""
    state = ProgramState(client)
    try:
        for step in steps:
            apply_step(state, step)
    except StepFailed as exc:
        return str(exc)
    return None


def machine_for(client: Any, record: list[dict[str, Any]]) -> type[RuleBasedStateMachine]:
    """A state machine class bound to a client; ``record`` receives each run's steps."""

    class ApiMachine(RuleBasedStateMachine):
        patients = Bundle("patients")

        def __init__(self) -> None:
            super().__init__()
            self.state = ProgramState(client)
            record.clear()

        def _do(self, step: dict[str, Any]) -> None:
            record.append(step)
            apply_step(self.state, step)

        @rule(target=patients, family=name_parts())
        def create(self, family: str) -> int:
            self._do({"op": "create", "family": family})
            return len(self.state.records) - 1

        @rule(ref=patients, family=name_parts())
        def update(self, ref: int, family: str) -> None:
            self._do({"op": "update", "ref": ref, "family": family})

        @rule(ref=patients, op=st.sampled_from(["read", "search", "history", "delete"]))
        def observe(self, ref: int, op: str) -> None:
            self._do({"op": op, "ref": ref})

    return ApiMachine
