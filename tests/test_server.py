"""The platform API against the real app: every route, every refusal, masking, audit.

The model comes from the main job's protocol (in-process, 1024-bit test-only
keys) on the breast data keyed by generated USCCs; the catalog records sit in
the real platform store (``lab.store``) of a temporary SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from test_server_support import (  # noqa: F401 - fixtures
    PEPPER,
    PERSON_ID,
    SUBJECT_WITH_EVERYTHING,
    World,
    audit_rows,
    make_world,
    trained,
)

from server.config import PlatformSettings
from server.platform.db import AppendOnlyError, Database
from server.platform.tables import ApiKey, AuditEvent

PURPOSE = {"purpose": "loan_approval"}


@pytest.fixture(scope="module")
def world(trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811
    yield from make_world(trained, tmp_path_factory.mktemp("platform"))


def error_code(response) -> str:
    return response.json()["error"]["code"]


def issue_key(world: World, institution_id: str) -> str:
    response = world.platform.post(f"/v1/institutions/{institution_id}/keys", json={},
                                   headers=world.headers(world.operator_key))
    assert response.status_code == 201
    return response.json()["api_key"]


# --------------------------------------------------------------------------- authentication


def test_health_needs_no_key(world: World) -> None:
    assert world.platform.get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "no_key"),
    ({"X-API-Key": "not-a-key"}, "bad_key"),
    ({"X-API-Key": "clk_000000000000_" + "A" * 43}, "bad_key"),
])
def test_missing_or_bad_key_is_refused(world: World, headers: dict[str, str], code: str) -> None:
    response = world.platform.get(f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}", params=PURPOSE,
                                  headers=headers)
    assert response.status_code == 401
    assert error_code(response) == code
    assert response.headers["WWW-Authenticate"].startswith("APIKey")
    assert "records" not in response.text


def test_right_id_wrong_secret_is_a_bad_key(world: World) -> None:
    key_id = world.bank_a_key.split("_")[1]
    forged = f"clk_{key_id}_" + "B" * 43
    response = world.platform.get("/v1/authorizations", headers={"X-API-Key": forged})
    assert (response.status_code, error_code(response)) == (401, "bad_key")


def test_revoked_key_is_refused(world: World) -> None:
    key = issue_key(world, world.bank_a)
    assert world.platform.get("/v1/authorizations", headers=world.headers(key)).status_code == 200
    key_id = key.split("_")[1]
    revoked = world.platform.post(f"/v1/keys/{key_id}/revoke", headers=world.headers(key))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    response = world.platform.get("/v1/authorizations", headers=world.headers(key))
    assert (response.status_code, error_code(response)) == (401, "revoked_key")


def test_expired_key_is_refused(world: World) -> None:
    key = issue_key(world, world.bank_a)
    database = Database(world.db_url, create_tables=False)
    with database.session() as session:
        session.get(ApiKey, key.split("_")[1]).expires_at = datetime.now(UTC) - timedelta(days=1)
    database.dispose()
    response = world.platform.get("/v1/authorizations", headers=world.headers(key))
    assert (response.status_code, error_code(response)) == (401, "expired_key")


def test_keys_are_stored_as_digests_only(world: World) -> None:
    database = Database(world.db_url, create_tables=False)
    with database.session() as session:
        digests = [row.digest for row in session.query(ApiKey)]
    database.dispose()
    secret = world.bank_a_key.split("_", 2)[2]
    assert digests and all(len(d) == 64 for d in digests)
    assert all(secret not in d for d in digests)
    dump = Path(world.db_url.removeprefix("sqlite:///")).read_bytes()
    assert secret.encode() not in dump


def test_rotation_gives_a_new_key_and_ends_the_old(world: World) -> None:
    old = issue_key(world, world.bank_b)
    rotated = world.platform.post("/v1/keys/rotate", json={"grace_seconds": 0},
                                  headers=world.headers(old))
    assert rotated.status_code == 201
    new = rotated.json()["api_key"]
    assert new != old and rotated.json()["institution_id"] == world.bank_b
    assert world.platform.get("/v1/authorizations", headers=world.headers(new)).status_code == 200
    response = world.platform.get("/v1/authorizations", headers=world.headers(old))
    assert (response.status_code, error_code(response)) == (401, "revoked_key")
    keys = world.platform.get(f"/v1/institutions/{world.bank_b}/keys",
                              headers=world.headers(world.operator_key)).json()
    by_id = {k["id"]: k for k in keys}
    assert by_id[old.split("_")[1]]["replaced_by"] == new.split("_")[1]
    assert all("api_key" not in k and "digest" not in k for k in keys)


def test_rotation_with_grace_keeps_the_old_key_until_then(world: World) -> None:
    old = issue_key(world, world.bank_b)
    rotated = world.platform.post("/v1/keys/rotate", json={"grace_seconds": 3600},
                                  headers=world.headers(old))
    assert rotated.status_code == 201
    assert world.platform.get("/v1/authorizations", headers=world.headers(old)).status_code == 200


@pytest.mark.parametrize(("who", "method", "path"), [
    ("provider", "GET", f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}?purpose=loan_approval"),
    ("provider", "POST", "/v1/partial-scores"),
    ("bank_a", "GET", "/v1/institutions"),
    ("bank_a", "POST", "/v1/authorizations"),
    ("bank_a", "GET", "/v1/audit"),
    ("bank_a", "GET", "/v1/usage"),
    ("operator", "GET", f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}?purpose=loan_approval"),
    ("provider", "GET", "/v1/authorizations"),
])
def test_wrong_role_is_refused(world: World, who: str, method: str, path: str) -> None:
    key = {"provider": world.provider_key, "bank_a": world.bank_a_key,
           "operator": world.operator_key}[who]
    body = {"model_id": "x", "usccs": [SUBJECT_WITH_EVERYTHING]} if method == "POST" else None
    if path == "/v1/authorizations" and method == "POST":
        body = {"subject_id": SUBJECT_WITH_EVERYTHING, "institution_id": world.bank_a,
                "purpose": "loan_approval", "evidence": "x",
                "expires_at": "2030-01-01T00:00:00Z"}
    response = world.platform.request(method, path, json=body, headers=world.headers(key))
    assert (response.status_code, error_code(response)) == (403, "wrong_role")


# --------------------------------------------------------------------------- institutions


def test_institutions_are_listed_and_names_unique(world: World) -> None:
    op = world.headers(world.operator_key)
    listed = world.platform.get("/v1/institutions", headers=op).json()
    names = {i["name"]: i for i in listed}
    assert names["甲银行"]["role"] == "bank"
    assert names["国网天津市电力公司"]["provider"] == "state_grid_tianjin"
    again = world.platform.post("/v1/institutions", headers=op,
                                json={"name": "甲银行", "role": "bank"})
    assert (again.status_code, error_code(again)) == (409, "institution_exists")
    bad = world.platform.post("/v1/institutions", headers=op,
                              json={"name": "某单位", "role": "provider", "provider": "nobody"})
    assert (bad.status_code, error_code(bad)) == (422, "unknown_provider")
    missing = world.platform.post("/v1/institutions/nope/keys", headers=op, json={})
    assert (missing.status_code, error_code(missing)) == (404, "institution_not_found")


# --------------------------------------------------------------------------- authorizations


def test_authorization_lifecycle_and_visibility(world: World) -> None:
    subject = world.trained.usccs[10]
    auth_id = world.authorize(world.bank_b, subject, items=[9, 2, 9], scoring=True)
    op, a, b = (world.headers(k) for k in (world.operator_key, world.bank_a_key,
                                          world.bank_b_key))
    mine = world.platform.get(f"/v1/authorizations/{auth_id}", headers=b).json()
    assert mine["status"] == "active" and mine["items"] == [2, 9] and mine["scoring"] is True
    assert mine["subject_kind"] == "uscc"
    assert world.platform.get(f"/v1/authorizations/{auth_id}", headers=a).status_code == 404
    assert auth_id not in {x["id"] for x in world.platform.get("/v1/authorizations",
                                                               headers=a).json()}
    listed = world.platform.get("/v1/authorizations", headers=op,
                                params={"subject_id": subject}).json()
    assert [x["id"] for x in listed] == [auth_id]
    revoked = world.platform.post(f"/v1/authorizations/{auth_id}/revoke", headers=op,
                                  json={"reason": "信息主体撤回授权"})
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_reason"] == "信息主体撤回授权"


def test_authorization_input_is_checked(world: World) -> None:
    op = world.headers(world.operator_key)
    base = {"subject_id": SUBJECT_WITH_EVERYTHING, "institution_id": world.bank_a,
            "purpose": "loan_approval", "evidence": "x", "expires_at": "2030-01-01T00:00:00Z"}
    bad_check = SUBJECT_WITH_EVERYTHING[:-1] + ("0" if SUBJECT_WITH_EVERYTHING[-1] != "0"
                                                else "1")
    response = world.platform.post("/v1/authorizations", headers=op,
                                   json={**base, "subject_id": bad_check})
    assert (response.status_code, error_code(response)) == (422, "invalid_request")
    assert bad_check not in response.text  # the message never echoes the id
    response = world.platform.post("/v1/authorizations", headers=op,
                                   json={**base, "institution_id": world.provider})
    assert (response.status_code, error_code(response)) == (422, "not_a_bank")
    response = world.platform.post("/v1/authorizations", headers=op,
                                   json={**base, "items": [11]})
    assert response.status_code == 422
    response = world.platform.post("/v1/authorizations", headers=op, json={
        **base, "granted_at": "2030-02-01T00:00:00Z"})
    assert (response.status_code, error_code(response)) == (422, "expiry_before_grant")
    person = world.platform.post("/v1/authorizations", headers=op,
                                 json={**base, "subject_id": PERSON_ID, "items": [7]})
    assert person.status_code == 201 and person.json()["subject_kind"] == "resident_id"


@pytest.mark.parametrize("field", ["expires_at", "granted_at"])
def test_datetime_without_offset_is_refused_naming_the_field(world: World, field: str) -> None:
    """A consent's dates without a UTC offset are ambiguous by 8 hours here: 422, not 500."""
    op = world.headers(world.operator_key)
    body = {"subject_id": SUBJECT_WITH_EVERYTHING, "institution_id": world.bank_a,
            "purpose": "loan_approval", "evidence": "x", "expires_at": "2030-01-01T00:00:00Z",
            field: "2029-06-01T00:00:00"}
    response = world.platform.post("/v1/authorizations", headers=op, json=body)
    assert (response.status_code, error_code(response)) == (422, "invalid_request")
    assert f"body.{field}" in response.json()["error"]["message"]
    key = world.platform.post(f"/v1/institutions/{world.bank_a}/keys", headers=op,
                              json={"expires_at": "2030-01-01T00:00:00"})
    assert (key.status_code, error_code(key)) == (422, "invalid_request")


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_a_date_outside_the_calendar_in_utc_is_a_422_not_a_500(world: World, when: str) -> None:
    """Both are valid ISO 8601 with an offset, but their UTC instant is outside years 1-9999."""
    op = world.headers(world.operator_key)
    body = {"subject_id": SUBJECT_WITH_EVERYTHING, "institution_id": world.bank_a,
            "purpose": "loan_approval", "evidence": "x", "expires_at": when}
    for response in (
            world.platform.post("/v1/authorizations", headers=op, json=body),
            world.platform.post(f"/v1/institutions/{world.bank_a}/keys", headers=op,
                                json={"expires_at": when}),
            world.platform.get("/v1/usage", headers=op,
                               params={"provider": "water_group", "since": when}),
            world.platform.get("/v1/usage", headers=op,
                               params={"provider": "water_group", "until": when})):
        assert (response.status_code, error_code(response)) == (422, "invalid_request")
        assert "outside the years 1-9999" in response.json()["error"]["message"]
    earliest = world.platform.get("/v1/usage", headers=op, params={
        "provider": "water_group", "until": "0001-01-02T00:00:00Z"})
    assert earliest.status_code == 200 and earliest.json()["total_uses"] == 0


# --------------------------------------------------------------------------- queries


def _item(world: World, key: str, item: int | str, subject: str = SUBJECT_WITH_EVERYTHING,
          purpose: str = "loan_approval"):
    return world.platform.get(f"/v1/enterprises/{subject}/items/{item}",
                              params={"purpose": purpose}, headers=world.headers(key))


def test_item_fields_are_masked_without_authorization(world: World) -> None:
    response = _item(world, world.bank_b_key, 9)
    assert response.status_code == 200
    body = response.json()
    assert body["masked"] is True and body["status"] == "shown"
    [record] = body["records"]
    assert record["values"]["grid_account_no"] == "01******05"
    assert record["values"]["address"] == "天津市滨海新****"
    assert record["values"]["operating_capacity_kva"] == 400.0  # public field shown
    assert record["values"]["enterprise_name"] == "天津市滨海新区示范科技有限公司"
    assert set(body["sensitive_fields"]) == {"grid_account_no", "address"}
    assert body["labels"]["grid_account_no"] == "电网户号"


def test_item_fields_are_unmasked_under_an_authorization(world: World) -> None:
    auth_id = world.authorize(world.bank_a, SUBJECT_WITH_EVERYTHING, items=[8, 9])
    body = _item(world, world.bank_a_key, "electricity").json()
    assert body["masked"] is False and auth_id in body["authorization_ids"]
    [record] = body["records"]
    assert record["values"]["grid_account_no"] == "0102030405"
    assert record["values"]["address"] == "天津市滨海新区第三大街88号"
    # the same authorization does not cover other purposes
    other = _item(world, world.bank_a_key, 9, purpose="post_loan_monitoring").json()
    assert other["masked"] is True


def test_current_version_only_with_disputes_and_repairs(world: World) -> None:
    body = _item(world, world.bank_b_key, 8).json()
    assert [r["record_id"] for r in body["records"]] == [world.record_ids["water"]]
    assert body["records"][0]["values"]["arrears_amount"] == 120.0  # the corrected value
    assert body["records"][0]["disputed"] is True
    assert body["records"][0]["values"]["account_name"] == "王**"
    assert [d["reason"] for d in body["disputes"]] == ["企业对欠费金额提出异议",
                                                       "企业对更正后的金额仍有异议"]
    assert [r["action"] for r in body["repairs"]] == ["correct"]
    electricity = _item(world, world.bank_b_key, 9).json()
    assert electricity["withdrawn_records"] == 1
    assert [r["record_id"] for r in electricity["records"]] == [world.record_ids["electricity"]]
    assert electricity["repairs"][0]["action"] == "withdraw"


def test_item_2_needs_an_authorization(world: World) -> None:
    refused = _item(world, world.bank_b_key, 2)
    assert (refused.status_code, error_code(refused)) == (403, "no_authorization")
    assert "5230" not in refused.text
    summary = world.platform.get(f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}", params=PURPOSE,
                                 headers=world.headers(world.bank_b_key)).json()
    item2 = summary["items"][1]
    assert item2["item"] == 2 and item2["records"] is None and item2["authorized"] is False
    assert summary["items"][0]["records"] == 3


def test_item_2_under_an_authorization_not_covering_it(world: World) -> None:
    subject = world.trained.usccs[2]
    world.authorize(world.bank_b, subject, items=[9])
    refused = _item(world, world.bank_b_key, 2, subject=subject)
    assert (refused.status_code, error_code(refused)) == (403, "item_not_authorized")


def test_item_2_expired_revoked_and_another_banks(world: World) -> None:
    subject = world.trained.usccs[3]
    now = datetime.now(UTC)
    world.authorize(world.bank_a, subject, items=[2], granted_at=now - timedelta(days=60),
                    expires_in=timedelta(days=30))
    expired = _item(world, world.bank_a_key, 2, subject=subject)
    assert (expired.status_code, error_code(expired)) == (403, "authorization_expired")
    other = world.authorize(world.bank_b, subject, items=[2])
    assert _item(world, world.bank_b_key, 2, subject=subject).status_code == 200
    # bank A holds only an expired one; B's live authorization does not help A
    again = _item(world, world.bank_a_key, 2, subject=subject)
    assert error_code(again) == "authorization_expired"
    world.platform.post(f"/v1/authorizations/{other}/revoke", json={"reason": "撤回"},
                        headers=world.headers(world.operator_key))
    revoked = _item(world, world.bank_b_key, 2, subject=subject)
    assert (revoked.status_code, error_code(revoked)) == (403, "authorization_revoked")


def test_another_banks_authorization_gives_nothing(world: World) -> None:
    subject = world.trained.usccs[4]
    world.authorize(world.bank_b, subject, items=[2, 9], scoring=True)
    refused = _item(world, world.bank_a_key, 2, subject=subject)
    assert (refused.status_code, error_code(refused)) == (403, "no_authorization")
    masked = _item(world, world.bank_a_key, 9, subject=subject).json()
    assert masked["masked"] is True
    served = _item(world, world.bank_b_key, 2, subject=subject).json()
    assert served["records"][0]["values"]["arrears_amount"] == 104.0


def test_natural_person_name_and_address_masked(world: World) -> None:
    body = _item(world, world.bank_b_key, 7, subject=PERSON_ID).json()
    values = body["records"][0]["values"]
    assert values["grower_name"] == "李**"
    assert values["id_number"] == "11**************2X"
    assert values["address"] == "天津市武清区****"
    summary = world.platform.get(f"/v1/enterprises/{PERSON_ID}", params=PURPOSE,
                                 headers=world.headers(world.bank_b_key)).json()
    assert summary["name"] == "李**" and summary["subject_kind"] == "resident_id"


def test_unknown_subject_item_and_bad_id(world: World) -> None:
    h = world.headers(world.bank_b_key)
    from test_server_support import make_uscc

    unknown = world.platform.get(f"/v1/enterprises/{make_uscc(77_777_777)}", params=PURPOSE,
                                 headers=h)
    assert (unknown.status_code, error_code(unknown)) == (404, "subject_not_found")
    item = _item(world, world.bank_b_key, "rocket-fuel")
    assert (item.status_code, error_code(item)) == (404, "unknown_item")
    good = make_uscc(5)
    wrong = good[:-1] + ("A" if good[-1] != "A" else "B")
    bad = world.platform.get(f"/v1/enterprises/{wrong}", params=PURPOSE, headers=h)
    assert (bad.status_code, error_code(bad)) == (422, "invalid_request")
    no_purpose = world.platform.get(f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}", headers=h)
    assert no_purpose.status_code == 422


def test_full_width_subject_ids_are_normalised(world: World) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) for c in SUBJECT_WITH_EVERYTHING)
    response = world.platform.get(f"/v1/enterprises/{wide}", params=PURPOSE,
                                  headers=world.headers(world.bank_b_key))
    assert response.status_code == 200
    assert response.json()["subject"] == SUBJECT_WITH_EVERYTHING


def test_credit_report_json_covers_every_item(world: World) -> None:
    report = world.platform.get(f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}/report",
                                params=PURPOSE, headers=world.headers(world.bank_b_key))
    assert report.status_code == 200
    body = report.json()
    assert [i["item"] for i in body["items"]] == list(range(1, 11))
    status = {i["item"]: i["status"] for i in body["items"]}
    assert status[2] == "not_authorized" and status[9] == "shown" and status[4] == "no_records"
    assert body["items"][1]["records"] == []
    assert body["items"][0]["data_dates"] == {"earliest": "2026-09-28", "latest": "2026-11-28"}
    assert body["institution_name"] == "乙银行" and body["authorization_ids"] == []
    assert "score" not in body and "pd" not in report.text


def test_credit_report_html(world: World) -> None:
    response = world.platform.get(f"/v1/enterprises/{SUBJECT_WITH_EVERYTHING}/report",
                                  params={**PURPOSE, "format": "html"},
                                  headers=world.headers(world.bank_b_key))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for text_ in ("公共信用信息报告", "电费信息", "电网户号", "01******05", "未经授权，不予展示",
                  "企业对欠费金额提出异议", "信用修复（记录撤销）", "贷款审批", "异议处理中"):
        assert text_ in page, text_
    assert "0102030405" not in page and "第三大街88号" not in page


# --------------------------------------------------------------------------- partial scores


def _partial(world: World, key: str, usccs: list[str], model_id: str | None = None):
    model_id = model_id or next(iter(world.platform_app.state.platform.scorer.parts))
    return world.platform.post("/v1/partial-scores", headers=world.headers(key),
                               json={"model_id": model_id, "usccs": usccs,
                                     "purpose": "loan_approval"})


def test_partial_scores_only_for_authorized_subjects(world: World) -> None:
    allowed, no_scoring, absent = world.trained.usccs[20:23]
    world.authorize(world.bank_a, allowed, items=[], scoring=True)
    world.authorize(world.bank_a, no_scoring, items=[9], scoring=False)
    body = _partial(world, world.bank_a_key, [allowed, no_scoring, absent]).json()
    assert [s["uscc"] for s in body["scores"]] == [allowed]
    assert {r["uscc"]: r["code"] for r in body["refused"]} == {
        no_scoring: "not_authorized_for_scoring", absent: "no_authorization"}
    items = body["scores"][0]["items"]
    assert sorted(i["item"] for i in items) == list(range(1, 11))
    total = sum(i["contribution"] for i in items)
    assert total == pytest.approx(body["scores"][0]["partial_logit"], abs=1e-12)


def test_partial_scores_unknown_model(world: World) -> None:
    response = _partial(world, world.bank_a_key, [world.trained.usccs[0]], model_id="f" * 32)
    assert (response.status_code, error_code(response)) == (404, "model_not_found")


def test_another_banks_model_is_not_served_even_with_an_authorization(world: World) -> None:
    """The part is bank A's model: bank B, authorized for the subject, gets what an unknown
    id gets (its answers would let it fit bank A's weights), and no score is computed."""
    subject = world.trained.usccs[23]
    world.authorize(world.bank_b, subject, items=[9], scoring=True)
    before = len(audit_rows(world))
    response = _partial(world, world.bank_b_key, [subject])
    assert (response.status_code, error_code(response)) == (404, "model_not_found")
    assert "scores" not in response.json()
    [row] = audit_rows(world)[before:]
    assert (row["institution_id"], row["outcome"], row["status_code"]) == (
        world.bank_b, "refused", 404)
    world.authorize(world.bank_a, subject, items=[], scoring=True)
    assert [s["uscc"] for s in _partial(world, world.bank_a_key, [subject]).json()["scores"]
            ] == [subject]


def test_models_must_name_their_bank(world: World) -> None:
    model_dir = world.trained.run_dir / "platform" / "model"
    for value, message in (
            (f'["{model_dir}"]', "JSON object naming the bank institution"),
            (f'{{"{model_dir}": " "}}', "must name the bank institution")):
        with pytest.raises(ValueError, match=message):
            PlatformSettings.from_env({"CREDITLAB_KEY_PEPPER": PEPPER, "CREDITLAB_MODELS": value})


# --------------------------------------------------------------------------- audit and usage


def test_audit_records_refusals_with_reason_and_no_secret(world: World) -> None:
    before = len(audit_rows(world))
    world.platform.get("/v1/authorizations", headers={"X-API-Key": "junk"})
    _item(world, world.provider_key, 9)
    rows = audit_rows(world)[before:]
    assert [(r["status_code"], r["outcome"], r["reason"]) for r in rows] == [
        (401, "refused", "bad_key"), (403, "refused", "wrong_role")]
    assert rows[1]["institution_id"] == world.provider and rows[1]["role"] == "provider"
    assert rows[1]["subjects"] == [SUBJECT_WITH_EVERYTHING]
    assert rows[1]["route"] == "/v1/enterprises/{subject}/items/{item}"
    assert all("junk" not in str(r) for r in rows)


def test_audit_is_append_only_in_the_database(world: World) -> None:
    database = Database(world.db_url, create_tables=False)
    with database.engine.connect() as connection:
        for statement in ("UPDATE api_audit_event SET outcome = 'served'",
                          "DELETE FROM api_audit_event", "DELETE FROM api_data_use"):
            with pytest.raises(Exception, match="append-only"):
                connection.execute(text(statement))
            connection.rollback()
    with pytest.raises(AppendOnlyError), database.session() as session:
        session.query(AuditEvent).first().outcome = "tampered"
    database.dispose()


def test_operator_reads_the_audit(world: World) -> None:
    response = world.platform.get("/v1/audit", params={"outcome": "refused", "limit": 5},
                                  headers=world.headers(world.operator_key))
    rows = response.json()
    assert response.status_code == 200 and 1 <= len(rows) <= 5
    assert all(r["outcome"] == "refused" for r in rows)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


def test_usage_feedback_for_a_provider(world: World) -> None:
    _item(world, world.bank_b_key, 9)  # one more masked electricity query by bank B
    usage = world.platform.get("/v1/usage", headers=world.headers(world.provider_key))
    assert usage.status_code == 200
    body = usage.json()
    assert body["provider"] == "state_grid_tianjin"
    assert {r["item"] for r in body["rows"]} == {9}
    masked_b = [r for r in body["rows"] if r["institution_name"] == "乙银行" and r["masked"]
                and r["action"] == "item_query:9"]
    assert masked_b and masked_b[0]["uses"] >= 1
    assert body["total_uses"] == sum(r["uses"] for r in body["rows"])
    other = world.platform.get("/v1/usage", params={"provider": "water_group"},
                               headers=world.headers(world.provider_key))
    assert (other.status_code, error_code(other)) == (403, "other_provider")
    by_operator = world.platform.get("/v1/usage", params={"provider": "water_group"},
                                     headers=world.headers(world.operator_key))
    assert by_operator.status_code == 200 and by_operator.json()["provider"] == "water_group"


def test_audit_completeness(trained, tmp_path: Path) -> None:  # noqa: F811
    """N requests of every outcome → exactly N new audit rows, each with the right fields."""
    for world in make_world(trained, tmp_path):
        start = len(audit_rows(world))
        a, p = world.headers(world.bank_a_key), world.headers(world.provider_key)
        subject = world.trained.usccs[0]
        auth_id = world.authorize(world.bank_a, subject, items=[2], scoring=True)
        calls = [
            ("GET", "/v1/authorizations", {}, 401, None, "no_key"),
            ("GET", "/v1/authorizations", {"X-API-Key": "x"}, 401, None, "bad_key"),
            ("GET", f"/v1/enterprises/{subject}/items/2?purpose=loan_approval", p, 403,
             world.provider, "wrong_role"),
            ("GET", f"/v1/enterprises/{subject}/items/2?purpose=loan_approval", a, 200,
             world.bank_a, None),
            ("GET", f"/v1/enterprises/{subject}/items/2?purpose=post_loan_monitoring", a, 403,
             world.bank_a, "no_authorization"),
            ("GET", f"/v1/enterprises/{subject}/items/9?purpose=loan_approval", a, 200,
             world.bank_a, None),
            ("GET", "/v1/enterprises/bad?purpose=loan_approval", a, 422, world.bank_a,
             "invalid_request"),
            ("GET", "/v1/nowhere", a, 404, None, "not_found"),
        ]
        for method, path, headers, status, _, _ in calls:
            assert world.platform.request(method, path, headers=headers).status_code == status
        rows = audit_rows(world)[start:]
        assert len(rows) == len(calls) + 1  # + the authorization recorded by the operator
        assert rows[0]["action"] == "create_authorization"
        assert rows[0]["authorization_ids"] == [auth_id]
        for row, (method, _, _, status, institution, reason) in zip(rows[1:], calls,
                                                                    strict=True):
            assert row["method"] == method and row["status_code"] == status
            assert row["institution_id"] == institution
            assert row["reason"] == reason
            assert row["outcome"] == ("served" if status < 400 else "refused")
            assert len(row["request_id"]) == 32
        served = rows[4]
        assert served["subjects"] == [subject] and served["purpose"] == "loan_approval"
        assert served["authorization_ids"] == [auth_id] and served["items"] == [2]
        assert rows[6]["authorization_ids"] == [] and rows[6]["items"] == [9]


def test_a_body_over_the_cap_is_refused_before_it_is_read_and_audited(world: World) -> None:
    from server.body_limit import MAX_BODY_BYTES

    op = world.headers(world.operator_key)
    big = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'", "role": "bank"}'
    declared = world.platform.post("/v1/institutions", headers={
        **op, "Content-Type": "application/json"}, content=big)
    streamed = world.platform.post("/v1/institutions", headers={
        **op, "Content-Type": "application/json"},
        content=(big[i:i + 65536] for i in range(0, len(big), 65536)))
    for response in (declared, streamed):
        assert (response.status_code, error_code(response)) == (413, "body_too_large")
        request_id = response.json()["error"]["request_id"]
        [row] = [r for r in audit_rows(world) if r["request_id"] == request_id]
        assert (row["status_code"], row["outcome"], row["reason"]) == (
            413, "refused", "body_too_large")
    small = world.platform.post("/v1/institutions", headers=op,
                                json={"name": "丁银行", "role": "bank"})
    assert small.status_code == 201


def test_cli_bootstrap_operator_and_settings_errors(tmp_path: Path, monkeypatch) -> None:
    from test_server_support import PEPPER
    from typer.testing import CliRunner

    from lab.cli import cli
    from server.platform.security import parse_key

    monkeypatch.setenv("CREDITLAB_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("CREDITLAB_KEY_PEPPER", PEPPER)
    runner = CliRunner()
    made = runner.invoke(cli, ["serve", "bootstrap-operator", "运营方"])
    assert made.exit_code == 0, made.output
    assert parse_key(made.stdout.strip()) is not None
    again = runner.invoke(cli, ["serve", "bootstrap-operator", "运营方"])
    assert again.exit_code == 2 and "exists already" in again.output
    monkeypatch.setenv("CREDITLAB_KEY_PEPPER", "short")
    refused = runner.invoke(cli, ["serve", "platform"])
    assert refused.exit_code == 2
    assert "CREDITLAB_KEY_PEPPER must be at least 16 characters" in refused.output


def test_derived_platform_features_map_to_their_catalog_items() -> None:
    from server.platform.scoring import derived_feature_items

    items = derived_feature_items()
    assert items["med_arrears_amount_24m"] == 2
    assert items["med_has_insurance"] == 1
    assert set(items.values()) <= set(range(1, 11))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_audit_tables_refuse_update_and_delete_on_both_backends(backend: str,
                                                              tmp_path: Path) -> None:
    """The append-only guard is in the database: SQLite triggers, a PostgreSQL trigger."""
    from lab.store.testing import temporary_store

    with temporary_store(backend, tmp_path) as store:
        database = Database(store.engine.url.render_as_string(hide_password=False))
        with database.engine.begin() as connection:
            connection.execute(AuditEvent.__table__.insert().values(
                at=datetime.now(UTC), request_id="r" * 32, method="GET", route="/v1/x",
                action="test", subjects=[], authorization_ids=[], items=[],
                outcome="served", status_code=200))
        for statement in ("UPDATE api_audit_event SET outcome = 'refused'",
                          "DELETE FROM api_audit_event"):
            with pytest.raises(Exception, match="append-only"), \
                    database.engine.begin() as connection:
                connection.execute(text(statement))
        with database.engine.connect() as connection:
            assert connection.execute(text(
                "SELECT outcome FROM api_audit_event")).scalar_one() == "served"
        database.dispose()


def test_an_access_that_cannot_be_recorded_is_not_served(world: World) -> None:
    from sqlalchemy import create_engine

    database = world.platform_app.state.platform.database
    working = database.audit_engine
    database.audit_engine = create_engine("sqlite:////nonexistent-dir/audit.db")
    try:
        response = _item(world, world.bank_a_key, 9)
    finally:
        database.audit_engine.dispose()
        database.audit_engine = working
    assert (response.status_code, error_code(response)) == (503, "audit_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "records" not in response.text and "0102030405" not in response.text
    assert _item(world, world.bank_a_key, 9).status_code == 200
