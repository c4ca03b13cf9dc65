"""Schemathesis against both apps' OpenAPI schemas: generated requests, no 5xx.

Every operation of the platform API is fuzzed three times over — without a
key, with the operator's key and with a bank's key — and every operation of
the bank API with its client key (the bank reaching the real platform app).
Bounded: a few examples per operation and pass, no deadline, no example
database, so the run takes well under a minute and is the same each time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from test_server_support import (  # noqa: F401 - fixtures
    BANK_CLIENT_KEY,
    PERSON_ID,
    SUBJECT_WITH_EVERYTHING,
    World,
    make_world,
    trained,
)

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def world(trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811
    yield from make_world(trained, tmp_path_factory.mktemp("schema"))


def with_valid_ids(case, subjects: list[str], pick: int, bank_id: str | None = None) -> None:
    """Half of the cases get a real subject id where the schema asks for one.

    A random 18-character string almost never has a valid GB 32100 check
    character, so without this the fuzzing would stop at validation (422) and
    never reach the authorization, masking and scoring code.
    """
    if pick % 2 or not subjects:
        return
    subject = subjects[pick // 2 % len(subjects)]
    if case.path_parameters and "subject" in case.path_parameters:
        case.path_parameters["subject"] = subject
    if isinstance(case.body, dict):
        if "uscc" in case.body:
            case.body["uscc"] = subject
        if "subject_id" in case.body:
            case.body["subject_id"] = subject
        if "institution_id" in case.body and bank_id is not None:
            case.body["institution_id"] = bank_id
        if isinstance(case.body.get("usccs"), list):
            case.body["usccs"] = [subject] * max(1, len(case.body["usccs"]))
        if isinstance(case.body.get("requests"), list):
            for entry in case.body["requests"]:
                if isinstance(entry, dict):
                    entry["uscc"] = subject


def fuzz(app, headers: dict[str, str], *, skip: tuple[str, ...] = (),
         subjects: list[str] | None = None, bank_id: str | None = None
         ) -> dict[str, set[int]]:
    """Run every operation of ``app``'s schema; the statuses seen per ``"METHOD path"``."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if any(part in operation.path for part in skip):
            continue

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(headers=headers), pick=st.integers(0, 63))
        def check(case, pick: int) -> None:
            with_valid_ids(case, subjects or [], pick, bank_id)
            response = case.call_and_validate(checks=[not_a_server_error], headers=headers)
            seen.setdefault(f"{case.method.upper()} {case.operation.path}", set()).add(
                response.status_code)

        check()
    return seen


def subjects(world: World) -> list[str]:
    """Subjects with records, some of them authorized for bank A (items 2 and 9, scoring)."""
    chosen = [SUBJECT_WITH_EVERYTHING, PERSON_ID, *world.trained.usccs[:3]]
    for subject in chosen[2:]:
        world.authorize(world.bank_a, subject, items=[2, 9], scoring=True)
    return chosen


def test_platform_schema_without_key(world: World) -> None:
    seen = fuzz(world.platform_app, {})
    assert len(seen) >= 15
    assert all(codes <= {200, 401, 404, 405, 422} for codes in seen.values()), seen
    assert all(codes == {401} for op, codes in seen.items()
               if op.startswith("POST") and "{" not in op), seen


def test_platform_schema_as_operator(world: World) -> None:
    # rotating would end the operator's own key mid-run: fuzzed without a key above
    seen = fuzz(world.platform_app, world.headers(world.operator_key),
                skip=("/v1/keys/rotate",), subjects=subjects(world), bank_id=world.bank_b)
    assert len(seen) >= 14
    assert 201 in seen["POST /v1/institutions"]
    assert seen["POST /v1/authorizations"] <= {201, 422}  # past authentication, into checks
    assert 200 in seen["GET /v1/audit"]


def test_platform_schema_as_bank(world: World) -> None:
    seen = fuzz(world.platform_app, world.headers(world.bank_a_key),
                skip=("/v1/keys/rotate",), subjects=subjects(world))
    assert len(seen) >= 14
    for route in ("GET /v1/enterprises/{subject}", "GET /v1/enterprises/{subject}/report"):
        assert 200 in seen[route], seen


def test_bank_schema(world: World) -> None:
    for uscc in world.trained.usccs[:20]:
        world.authorize(world.bank_a, uscc, items=[], scoring=True)
    with world.bank_client() as client:
        seen = fuzz(client.app, {"X-API-Key": BANK_CLIENT_KEY},
                    subjects=world.trained.usccs[:20])
    assert set(seen) == {"GET /healthz", "GET /v1/model", "POST /v1/scores",
                         "POST /v1/scores/batch"}
    assert 200 in seen["POST /v1/scores"] and 200 in seen["POST /v1/scores/batch"], seen
