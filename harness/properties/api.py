"""API properties: what must hold for any valid (or invalid) input a supplier's API is sent.

Each property is a function ``(client, example) -> failure message or None`` over a drawn
example, so a run is reproducible from its seed and a counterexample can be replayed: the
same example re-sends the same requests. Examples are synthetic (generated, not patient
data); they are stored with the counterexample so ``care-assure replay`` can re-run them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from harness import progress
from harness.identifiers import NHS_NUMBER_SYSTEM
from harness.properties.strategies import human_names, nhs_numbers, patients

Example = dict[str, Any]
Check = Callable[[Any, Example], str | None]
SERVER_OWNED = ("id", "meta", "text")
# Each check tags what it creates with a fresh value of this system, so examples (which shrink
# towards the same NHS numbers and names) never see each other's records in a shared sandbox.
PROBE_SYSTEM = "https://care-assure.example/Id/property-probe"


def _tagged(patient: dict[str, Any]) -> tuple[dict[str, Any], str]:
    tag = uuid.uuid4().hex
    body = copy.deepcopy(patient)
    body["identifier"] = [*body.get("identifier", []), {"system": PROBE_SYSTEM, "value": tag}]
    return body, tag


def _new_patient(draw: st.DrawFn) -> dict[str, Any]:
    patient: dict[str, Any] = draw(patients("new", draw(nhs_numbers(test_range=True))))
    patient.pop("id")
    return patient


@st.composite
def _patient_examples(draw: st.DrawFn) -> Example:
    patient = _new_patient(draw)
    if draw(st.booleans()):
        names = draw(st.lists(human_names(), min_size=1, max_size=2))
        patient["name"] = [{**n, "given": [*n.get("given", []), "Second"]} for n in names]
    return {"patient": patient}


@st.composite
def _invalid_examples(draw: st.DrawFn) -> Example:
    patient = _new_patient(draw)
    kind = draw(st.sampled_from(["bad-nhs-number", "unknown-gender", "malformed-json", "wrong-nhs-system"]))
    nhs = next(i for i in patient["identifier"] if i["system"] == NHS_NUMBER_SYSTEM)
    if kind == "bad-nhs-number":
        value = nhs["value"]
        nhs["value"] = value[:9] + str((int(value[9]) + draw(st.integers(1, 9))) % 10)
    elif kind == "wrong-nhs-system":  # a near miss of the national system, as mis-keyed integrations send
        nhs["system"] = draw(st.sampled_from(["http://fhir.nhs.uk/Id/nhs-number", "https://fhir.nhs.uk/Id/nhs-number/",
                                              "https://fhir.nhs.uk/Id/nhs-numbr", "https://fhir.nhs.uk/id/nhs-number"]))
    elif kind == "unknown-gender":
        patient["gender"] = draw(st.sampled_from(["M", "F", "Male", "U", "9"]))
    return {"kind": kind, "patient": patient}


def _created(client: Any, patient: dict[str, Any]) -> tuple[str | None, str | None]:
    result = client.request("POST", "Patient", body=patient, rule="property")
    if result.error:
        raise ConnectionError(result.error)
    if result.status not in (200, 201) or not isinstance(result.json, dict) or not result.json.get("id"):
        return None, f"create answered {result.status} without a created Patient ({result.where})"
    return str(result.json["id"]), None


def _subset(sent: Any, got: Any, path: str) -> str | None:
    """Where ``got`` lost or changed something ``sent`` had (None when everything was kept)."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return f"{path} is no longer an object"
        for key, value in sent.items():
            if key not in got:
                return f"{path}.{key} was dropped"
            found = _subset(value, got[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) < len(sent):
            return f"{path} lost items (sent {len(sent)}, read {len(got) if isinstance(got, list) else 0})"
        for i, item in enumerate(sent):
            found = _subset(item, got[i], f"{path}[{i}]")
            if found:
                return found
        return None
    return None if sent == got else f"{path} changed"


def round_trip(client: Any, example: Example) -> str | None:
    sent = copy.deepcopy(example["patient"])
    rid, problem = _created(client, sent)
    if problem or rid is None:
        return problem
    read = client.request("GET", f"Patient/{rid}", rule="property")
    if read.status != 200 or not isinstance(read.json, dict):
        return f"read after create answered {read.status} ({read.where})"
    kept = {k: v for k, v in sent.items() if k not in SERVER_OWNED}
    lost = _subset(kept, read.json, "Patient")
    return f"{lost} between create and read ({read.where})" if lost else None


def rejection(client: Any, example: Example) -> str | None:
    tagged, tag = _tagged(example["patient"])
    body: Any = b'{"resourceType": "Patient", "name": [' if example["kind"] == "malformed-json" else tagged
    result = client.request("POST", "Patient", body=body, rule="property")
    if result.error:
        raise ConnectionError(result.error)
    if result.status is None or not 400 <= result.status < 500:
        return f"invalid input ({example['kind']}) answered {result.status}, expected 4xx ({result.where})"
    if not (isinstance(result.json, dict) and result.json.get("resourceType") == "OperationOutcome"):
        return f"the rejection of {example['kind']} has no OperationOutcome ({result.where})"
    found = client.request("GET", f"Patient?identifier={PROBE_SYSTEM}|{tag}", rule="property")
    if isinstance(found.json, dict) and found.json.get("entry"):
        return f"the rejected {example['kind']} record was stored anyway ({found.where})"
    return None


def nhs_search(client: Any, example: Example) -> str | None:
    tagged, tag = _tagged(example["patient"])
    rid, problem = _created(client, tagged)
    if problem:
        return problem
    nhs = next(i["value"] for i in example["patient"]["identifier"] if i["system"] == NHS_NUMBER_SYSTEM)
    # both criteria must hold (repeated parameters are ANDed): the tag only picks this record out
    found = client.request("GET", f"Patient?identifier={NHS_NUMBER_SYSTEM}|{nhs}&identifier={PROBE_SYSTEM}|{tag}",
                           rule="property")
    ids = [e.get("resource", {}).get("id") for e in (found.json or {}).get("entry", [])]
    return None if rid in ids else f"search by the new NHS number did not find the record just created " \
        f"({len(ids)} other match(es); {found.where})"


def if_match(client: Any, example: Example) -> str | None:
    rid, problem = _created(client, example["patient"])
    if problem:
        return problem
    first = client.request("GET", f"Patient/{rid}", rule="property")
    version = (first.json or {}).get("meta", {}).get("versionId")
    if not version:
        return f"created record has no meta.versionId ({first.where})"
    body = {**example["patient"], "id": rid, "active": False}
    fresh = client.request("PUT", f"Patient/{rid}", body=body, headers={"If-Match": f'W/"{version}"'},
                           rule="property")
    if fresh.status != 200:
        return f"update with the current If-Match answered {fresh.status} ({fresh.where})"
    stale = client.request("PUT", f"Patient/{rid}", body=body, headers={"If-Match": f'W/"{version}"'},
                           rule="property")
    return None if stale.status == 412 else f"update with a stale If-Match answered {stale.status}, expected 412 " \
        f"({stale.where})"


def _paging_examples() -> st.SearchStrategy[Example]:
    # only the sizes matter, so the example stays small and shrinks fast
    return st.fixed_dictionaries({"matches": st.integers(2, 7), "count": st.integers(1, 3)})


def paging(client: Any, example: Example) -> str | None:
    marker = "Zq" + uuid.uuid4().hex[:12]  # a family name no other record has
    created: list[str] = []
    for _ in range(example["matches"]):
        rid, problem = _created(client, {"resourceType": "Patient", "name": [{"family": marker}]})
        if problem:
            return problem
        created.append(str(rid))
    url: str | None = f"Patient?family={marker}&_count={example['count']}"
    seen: list[str] = []
    for _ in range(50):
        if url is None:
            break
        page = client.request("GET", url, rule="property")
        bundle = page.json if isinstance(page.json, dict) else {}
        seen.extend(str(e.get("resource", {}).get("id")) for e in bundle.get("entry", []))
        url = next((ln.get("url") for ln in bundle.get("link", []) if ln.get("relation") == "next"), None)
    if sorted(seen) != sorted(created):
        repeats = len(seen) - len(set(seen))
        return f"paging returned {len(seen)} records for {len(created)} matches ({repeats} repeated)"
    return None


@dataclass(frozen=True)
class ApiProperty:
    name: str
    examples: Callable[[], st.SearchStrategy[Example]]
    check: Check




class PropertyFailed(AssertionError):
    """The property did not hold for an example."""


@dataclass
class PropertyOutcome:
    examples_run: int
    example: Example | None = None
    message: str | None = None
    exchanges: tuple[int, int] = (0, 0)
    error: str | None = None


def run_property(prop: ApiProperty, client: Any, *, examples: int, seed: int,
                 deadline_ms: int | None = None) -> PropertyOutcome:
    """Search for a counterexample; on failure Hypothesis shrinks it and replays it last."""
    from hypothesis import HealthCheck, given, settings  # noqa: PLC0415
    from hypothesis import seed as fixed_seed  # noqa: PLC0415

    if prop.name == "stateful":
        return _run_machine(client, examples=examples, seed=seed)
    outcome = PropertyOutcome(0)
    last: list[Any] = [None, None, (0, 0)]

    @settings(max_examples=examples, deadline=None if deadline_ms is None else deadline_ms, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @fixed_seed(seed)
    @given(prop.examples())
    def search(example: Example) -> None:
        outcome.examples_run += 1
        job.advance()
        start = len(client.evidence.exchanges)
        last[:] = [example, None, (start, start)]
        message = prop.check(client, example)
        last[1:] = [message, (start, len(client.evidence.exchanges))]
        if message:
            raise PropertyFailed(message)

    with progress.task(f"property {prop.name}", total=examples) as job:
        try:
            search()
        except PropertyFailed:
            outcome.example, outcome.message, outcome.exchanges = last
            job.note = "failed; shrunk to a minimal counterexample"
        except ConnectionError as exc:
            outcome.error = f"the API could not be reached during the property: {exc}"
            job.note = "the API could not be reached"
    return outcome


def _run_machine(client: Any, *, examples: int, seed: int) -> PropertyOutcome:
    import random  # noqa: PLC0415

    from hypothesis import HealthCheck, settings  # noqa: PLC0415
    from hypothesis.stateful import run_state_machine_as_test  # noqa: PLC0415

    from harness.properties.stateful import StepFailed, machine_for  # noqa: PLC0415

    steps: list[dict[str, Any]] = []
    outcome = PropertyOutcome(examples)
    start = len(client.evidence.exchanges)
    random.seed(seed)  # run_state_machine_as_test draws its seed from the global random state
    with progress.task("property stateful", total=examples, unit="programs") as job:
        try:
            run_state_machine_as_test(machine_for(client, steps), settings=settings(
                max_examples=examples, stateful_step_count=12, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck), print_blob=False))
        except StepFailed as exc:
            outcome.example, outcome.message = {"steps": list(steps)}, str(exc)
            outcome.exchanges = (max(start, len(client.evidence.exchanges) - len(steps)),  # one request per step
                                 len(client.evidence.exchanges))
            job.note = "failed; shrunk to a minimal program"
        except ConnectionError as exc:
            outcome.error = f"the API could not be reached during the property: {exc}"
            job.note = "the API could not be reached"
        job.advance(examples)
    return outcome


def stateful(client: Any, example: Example) -> str | None:
    from harness.properties.stateful import run_program  # noqa: PLC0415
    return run_program(client, example["steps"])


PROPERTIES: dict[str, ApiProperty] = {p.name: p for p in [
    ApiProperty("round-trip", _patient_examples, round_trip),
    ApiProperty("rejection", _invalid_examples, rejection),
    ApiProperty("nhs-search", _patient_examples, nhs_search),
    ApiProperty("if-match", _patient_examples, if_match),
    ApiProperty("paging", _paging_examples, paging),
    ApiProperty("stateful", st.nothing, stateful),  # driven by the state machine, not by examples
]}
