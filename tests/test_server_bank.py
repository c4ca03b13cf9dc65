"""The bank scoring API with federated inference against the real platform app.

The bank app reaches the platform app through httpx's ASGI transport (the
same HTTP requests uvicorn would carry); "platform down" is a real refused
connection on a closed loopback port.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_server_support import (  # noqa: F401 - fixtures
    BANK_CLIENT_KEY,
    World,
    copy_run,
    make_uscc,
    make_world,
    trained,
)

from models.scorecard import ScorecardScaling, sigmoid


@pytest.fixture(scope="module")
def world(trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811
    yield from make_world(trained, tmp_path_factory.mktemp("bank"))


@pytest.fixture(scope="module")
def bank(world: World):
    with world.bank_client() as client:
        yield client


def error_code(response) -> str:
    return response.json()["error"]["code"]


def test_served_score_equals_the_offline_score(world: World, bank) -> None:
    """Same model, same enterprise: the served logit and PD are the offline ones."""
    run = world.trained
    # the offline helper reproduces the run's own test-set evaluation exactly
    offline_values = sorted(run.offline_logits.values())
    for value in run.run_test_logits[:20]:
        assert min(abs(value - v) for v in offline_values) < 1e-9
    scaling = ScorecardScaling()
    for uscc in run.usccs[30:40]:
        world.authorize(world.bank_a, uscc, items=[], scoring=True)
        response = bank.post("/v1/scores", json={"uscc": uscc})
        assert response.status_code == 200, response.text
        body = response.json()
        offline = run.offline_logits[uscc]
        assert body["logit"] == pytest.approx(offline, abs=1e-9)
        assert body["pd"] == pytest.approx(sigmoid(offline), rel=1e-9)
        assert body["points"] == pytest.approx(scaling.points_from_logit(offline), abs=1e-6)
        assert body["uscc"] == uscc
        assert body["model_version"].startswith("breast/run1/")
        assert len(body["request_id"]) == 32 and len(body["platform_request_id"]) == 32


def test_points_band_and_reasons(world: World, bank) -> None:
    uscc = world.trained.usccs[41]
    world.authorize(world.bank_a, uscc, items=[], scoring=True)
    body = bank.post("/v1/scores", json={"uscc": uscc}).json()
    scaling = ScorecardScaling()
    assert body["points"] == pytest.approx(scaling.points_from_pd(body["pd"]), abs=1e-6)
    expected_band = next(b for b in ("A", "B", "C", "D", "E")
                         if body["points"] >= {"A": 640, "B": 600, "C": 560, "D": 520,
                                               "E": -math.inf}[b])
    assert body["band"] == expected_band
    reasons = body["reasons"]
    assert 1 <= len(reasons) <= 4
    contributions = [r["contribution"] for r in reasons]
    assert contributions == sorted(contributions, reverse=True) and min(contributions) > 0
    for reason in reasons:
        assert reason["points"] == pytest.approx(reason["contribution"] * scaling.factor,
                                                 abs=0.01)
        if reason["source"] == "platform":
            # named by catalog item only, never by a platform feature
            assert reason["code"].startswith("P-") and not reason["name"].startswith("x")
            assert reason["name"].endswith("信息")
        else:
            assert reason["code"] == f"B-{reason['name']}"


def test_features_in_the_request_give_the_same_score(world: World, bank) -> None:
    import pandas as pd

    uscc = world.trained.usccs[42]
    world.authorize(world.bank_a, uscc, items=[], scoring=True)
    row = pd.read_csv(world.trained.bank_csv, dtype={"id": str}).set_index("id").loc[uscc]
    features = {f"x{i}": float(row[f"x{i}"]) for i in range(10)}
    from_store = bank.post("/v1/scores", json={"uscc": uscc}).json()
    given = bank.post("/v1/scores", json={"uscc": uscc, "features": features}).json()
    assert given["pd"] == pytest.approx(from_store["pd"], rel=1e-12)
    bad = bank.post("/v1/scores", json={"uscc": uscc, "features": {**features, "x99": 1.0}})
    assert (bad.status_code, error_code(bad)) == (422, "bad_features")
    assert "x99" in bad.json()["error"]["message"]
    missing = bank.post("/v1/scores", json={"uscc": uscc, "features": {"x0": 1.0}})
    assert error_code(missing) == "bad_features"


def test_features_far_outside_the_training_data_are_refused(world: World, bank) -> None:
    """1e308 for an amount scored as band A; a percent for a fraction as certain default."""
    import pandas as pd

    uscc = world.trained.usccs[60]
    world.authorize(world.bank_a, uscc, items=[], scoring=True)
    row = pd.read_csv(world.trained.bank_csv, dtype={"id": str}).set_index("id").loc[uscc]
    features = {f"x{i}": float(row[f"x{i}"]) for i in range(10)}
    assert bank.post("/v1/scores", json={"uscc": uscc, "features": features}).status_code == 200
    for name, value in (("x3", 1e308), ("x7", -1e9)):
        far = bank.post("/v1/scores", json={"uscc": uscc, "features": {**features, name: value}})
        assert (far.status_code, error_code(far)) == (422, "bad_features")
        message = far.json()["error"]["message"]
        assert f"standard deviations from the training data's mean: {name};" in message
        assert str(value) not in message


def test_no_score_without_the_platforms_authorization(world: World, bank) -> None:
    uscc = world.trained.usccs[43]
    response = bank.post("/v1/scores", json={"uscc": uscc})
    assert (response.status_code, error_code(response)) == (403, "no_authorization")
    assert "pd" not in response.json() and "points" not in response.text
    assert "authorization" in response.json()["error"]["message"]


def test_no_score_when_authorization_expired_revoked_or_another_banks(world: World,
                                                                      bank) -> None:
    from datetime import UTC, datetime, timedelta

    expired, revoked, others = world.trained.usccs[44:47]
    world.authorize(world.bank_a, expired, items=[], scoring=True,
                    granted_at=datetime.now(UTC) - timedelta(days=10),
                    expires_in=timedelta(days=1))
    auth_id = world.authorize(world.bank_a, revoked, items=[], scoring=True)
    world.platform.post(f"/v1/authorizations/{auth_id}/revoke", json={"reason": "撤回"},
                        headers=world.headers(world.operator_key))
    world.authorize(world.bank_b, others, items=[], scoring=True)
    codes = [error_code(bank.post("/v1/scores", json={"uscc": u}))
             for u in (expired, revoked, others)]
    assert codes == ["authorization_expired", "authorization_revoked", "no_authorization"]


def test_platform_down_is_a_503_with_retry_after(world: World) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uscc = world.trained.usccs[30]
    with world.bank_client(transport=None, platform_url=f"http://127.0.0.1:{port}",
                           retry_after_s=7) as down:
        response = down.post("/v1/scores", json={"uscc": uscc})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
        assert error_code(response) == "platform_unavailable"
        assert set(response.json()) == {"error"}
        batch = down.post("/v1/scores/batch", json={"requests": [{"uscc": uscc}]})
        assert (batch.status_code, error_code(batch)) == (503, "platform_unavailable")


def test_batch_scores_and_refusals_in_order(world: World, bank) -> None:
    ok1, ok2, refused = world.trained.usccs[50:53]
    for uscc in (ok1, ok2):
        world.authorize(world.bank_a, uscc, items=[], scoring=True)
    unknown_customer = make_uscc(88_888_888)
    response = bank.post("/v1/scores/batch", json={"requests": [
        {"uscc": ok1}, {"uscc": refused}, {"uscc": unknown_customer}, {"uscc": ok2},
        {"uscc": ok1, "purpose": "post_loan_monitoring"}]})
    assert response.status_code == 200
    body = response.json()
    assert (body["scored"], body["refused"]) == (2, 3)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["status"] for r in results] == ["scored", "refused", "refused", "scored",
                                              "refused"]
    assert [r["error"]["code"] for r in results if r["error"]] == [
        "no_authorization", "customer_not_found", "no_authorization"]
    assert all(r["score"] is None for r in results if r["status"] == "refused")
    single = bank.post("/v1/scores", json={"uscc": ok2}).json()
    assert results[3]["score"]["pd"] == pytest.approx(single["pd"], rel=1e-12)
    assert results[0]["score"]["logit"] == pytest.approx(world.trained.offline_logits[ok1],
                                                         abs=1e-9)


def test_bank_clients_need_their_key(world: World, bank) -> None:
    uscc = world.trained.usccs[30]
    none = bank.post("/v1/scores", json={"uscc": uscc}, headers={"X-API-Key": ""})
    assert (none.status_code, error_code(none)) == (401, "no_key")
    wrong = bank.post("/v1/scores", json={"uscc": uscc}, headers={"X-API-Key": "guess"})
    assert (wrong.status_code, error_code(wrong)) == (401, "bad_key")
    assert bank.get("/healthz", headers={"X-API-Key": ""}).json() == {"status": "ok"}


def test_model_info(world: World, bank) -> None:
    info = bank.get("/v1/model").json()
    manifest = json.loads((world.trained.run_dir / "manifest.json").read_text())
    parts = {p["role"]: p for p in manifest["parts"]}
    assert info["bank_part_sha256"] == parts["bank"]["sha256"]
    assert info["platform_part_id"] == parts["platform"]["part_id"]
    assert info["bank_features"] == [f"x{i}" for i in range(10)]
    assert (info["base_points"], info["base_odds"], info["pdo"]) == (600, 50, 20)


def test_invalid_uscc_is_refused_before_any_platform_call(world: World, bank) -> None:
    good = make_uscc(3)
    response = bank.post("/v1/scores", json={"uscc": good[:-1] + ("A" if good[-1] != "A"
                                                                   else "B")})
    assert (response.status_code, error_code(response)) == (422, "invalid_request")


def test_platform_refusing_the_bank_key_is_a_502(world: World) -> None:
    uscc = world.trained.usccs[30]
    with world.bank_client(platform_api_key="clk_000000000000_" + "A" * 43) as client:
        response = client.post("/v1/scores", json={"uscc": uscc})
    assert (response.status_code, error_code(response)) == (502, "platform_refused_bank")


def test_model_mismatch_gives_no_score(world: World, tmp_path: Path) -> None:
    run = copy_run(world.trained, tmp_path)
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for part in manifest["parts"]:
        if part["role"] == "platform":
            part["sha256"] = hashlib.sha256(b"another model").hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    uscc = world.trained.usccs[30]
    with world.bank_client(model_dir=run / "bank" / "model", manifest=manifest_path) as client:
        response = client.post("/v1/scores", json={"uscc": uscc})
    assert (response.status_code, error_code(response)) == (502, "model_mismatch")


def test_a_platform_url_that_is_not_the_platform_is_named(world: World) -> None:
    """Any 404 read as a model mismatch sent operators to redeploy models, not fix the URL."""
    import httpx

    elsewhere = httpx.MockTransport(lambda request: httpx.Response(404, text="Not Found"))
    uscc = world.trained.usccs[30]
    with world.bank_client(transport=elsewhere) as client:
        response = client.post("/v1/scores", json={"uscc": uscc})
    assert (response.status_code, error_code(response)) == (502, "platform_url_wrong")
    assert "CREDITLAB_BANK_PLATFORM_URL" in response.json()["error"]["message"]


def test_a_batch_body_over_the_cap_is_a_413(bank) -> None:
    from server.body_limit import MAX_BODY_BYTES

    big = b'{"requests": [' + b'{"uscc": "x"},' * (MAX_BODY_BYTES // 14) + b'{"uscc": "x"}]}'
    response = bank.post("/v1/scores/batch", content=big,
                         headers={"Content-Type": "application/json"})
    assert (response.status_code, error_code(response)) == (413, "body_too_large")
    assert response.json()["error"]["request_id"] == response.headers["X-Request-ID"]


def test_bank_refuses_to_start_with_a_foreign_manifest(world: World, tmp_path: Path) -> None:
    from server.bank import create_app

    run = copy_run(world.trained, tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    for part in manifest["parts"]:
        part["sha256"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not list the bank part"):
        create_app(world.bank_settings(model_dir=run / "bank" / "model"))


def test_client_key_digests_are_checked_in_settings(world: World) -> None:
    with pytest.raises(ValueError, match="SHA-256 hex digests"):
        world.bank_settings(client_key_sha256=[BANK_CLIENT_KEY])


def test_partial_scores_are_audited_with_items(world: World, bank) -> None:
    from test_server_support import audit_rows

    uscc = world.trained.usccs[30]
    before = len(audit_rows(world))
    bank.post("/v1/scores", json={"uscc": uscc})
    [row] = audit_rows(world)[before:]
    assert row["action"] == "partial_scores" and row["outcome"] == "served"
    assert row["institution_id"] == world.bank_a and row["subjects"] == [uscc]
    assert row["items"] == list(range(1, 11)) and len(row["authorization_ids"]) == 1
