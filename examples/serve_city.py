"""Serve the city scenario's model: both APIs, one authorized score, one refusal.

Run after ``creditlab city --workdir runs/city`` (``make demo`` runs both)::

    .venv/bin/python examples/serve_city.py --workdir runs/city

What it does, as an operator and a bank would, through the commands and
HTTP routes the README documents:

1. copies the city's platform store to a temporary directory (so the example
   can be run again and leaves the city untouched) and creates the platform
   operator with ``creditlab serve bootstrap-operator``;
2. starts ``creditlab serve platform`` on that store, serving the joint
   model's platform part to the bank ``城市银行`` with the feature snapshot
   the model was trained on;
3. registers the bank, issues its key, and records one enterprise's
   authorization (loan approval; items 2 and 9; scoring);
4. starts ``creditlab serve bank`` with the bank's part and its loan book as
   its own feature store, and asks for the score of the authorized
   enterprise and of one that gave no authorization (403: no score).

Both servers are started here and stopped here by their process ids, also
when a step fails. Keys are random per run and are never printed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from lab.deployment import free_port, is_alive, spawn, stop_process

BANK = "城市银行"
HOST = "127.0.0.1"
CREDITLAB = [str(Path(sys.executable).parent / "creditlab")]  # the venv's command


@contextmanager
def serving(command: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``creditlab serve <command>`` on a free port until the block ends; its base URL.

    Started and stopped (with its process group) by the helpers that
    ``creditlab federation`` uses for its own processes.
    """
    port = free_port(HOST)
    record = spawn([*CREDITLAB, "serve", command, "--port", str(port)], env=env, log=log,
                   cwd=Path.cwd())
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if not is_alive(record):
                raise SystemExit(f"creditlab serve {command} stopped:\n{log.read_text()}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"creditlab serve {command} did not answer within 120 s")
            time.sleep(0.3)
        yield url
    finally:
        stop_process(record, grace=20)


def checked(response: httpx.Response, status: int) -> dict:
    if response.status_code != status:
        raise SystemExit(f"{response.request.method} {response.request.url.path}: expected "
                         f"{status}, got {response.status_code}: {response.text}")
    return response.json()


def two_enterprises(bank_book: Path, features: Path) -> tuple[str, str]:
    """Two USCCs in the bank's book that the platform's snapshot also holds."""
    with features.open(encoding="utf-8") as f:
        platform = {row["uscc"] for row in csv.DictReader(f)}
    with bank_book.open(encoding="utf-8") as f:
        both = [row["uscc"] for row in csv.DictReader(f) if row["uscc"] in platform]
    if len(both) < 2:
        raise SystemExit(f"{bank_book} and {features} share fewer than two enterprises")
    return both[0], both[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/city"),
                        help="the workdir of `creditlab city` (default: runs/city)")
    args = parser.parse_args()
    summary_path = args.workdir / "city_summary.json"
    if not summary_path.exists():
        raise SystemExit(f"{summary_path} not found: run `creditlab city --workdir "
                         f"{args.workdir}` first")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    run_dir = Path(summary["run_dir"])
    features = args.workdir / "snapshots" / f"platform-snapshot-{summary['snapshot_id']}.csv"
    bank_book = args.workdir / "city" / "banks" / "bank_1.csv"
    subject, unauthorized = two_enterprises(bank_book, features)

    with tempfile.TemporaryDirectory(prefix="creditlab-serve-") as tmp:
        work = Path(tmp)
        shutil.copy(args.workdir / "platform.db", work / "platform.db")
        env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
               "CREDITLAB_DB_URL": f"sqlite:///{work / 'platform.db'}",
               "CREDITLAB_KEY_PEPPER": secrets.token_urlsafe(32),
               "CREDITLAB_MODELS": json.dumps({str(run_dir / "platform" / "model"): BANK},
                                              ensure_ascii=False),
               "CREDITLAB_FEATURES": str(features), "CREDITLAB_FEATURES_ID_COLUMN": "uscc"}
        operator_key = subprocess.run([*CREDITLAB, "serve", "bootstrap-operator", "平台运营方"],
                                      env=env, check=True, capture_output=True,
                                      text=True).stdout.strip()
        print("[serve] platform operator created; starting the platform API")
        with serving("platform", env, work / "platform.log") as platform_url:
            op = {"X-API-Key": operator_key}
            bank = checked(httpx.post(f"{platform_url}/v1/institutions", headers=op,
                                      json={"name": BANK, "role": "bank"}), 201)
            bank_key = checked(httpx.post(f"{platform_url}/v1/institutions/{bank['id']}/keys",
                                          headers=op, json={}), 201)["api_key"]
            expires = (datetime.now(UTC) + timedelta(days=90)).isoformat()
            consent = checked(httpx.post(f"{platform_url}/v1/authorizations", headers=op, json={
                "subject_id": subject, "institution_id": bank["id"], "purpose": "loan_approval",
                "items": [2, 9], "scoring": True, "evidence": "授权书-示例-0001",
                "expires_at": expires}), 201)
            print(f"[serve] {BANK} registered; authorization {consent['id'][:8]}… "
                  f"({consent['status']}, items {consent['items']}, scoring)")
            item = checked(httpx.get(f"{platform_url}/v1/enterprises/{subject}/items/9",
                                     params={"purpose": "loan_approval"},
                                     headers={"X-API-Key": bank_key}), 200)
            print(f"[serve] plain query, item 9 as {BANK}: {len(item['records'])} records, "
                  f"masked={item['masked']}")

            client_key = secrets.token_urlsafe(24)
            bank_env = {**env, "CREDITLAB_BANK_MODEL_DIR": str(run_dir / "bank" / "model"),
                        "CREDITLAB_BANK_PLATFORM_URL": platform_url,
                        "CREDITLAB_BANK_PLATFORM_API_KEY": bank_key,
                        "CREDITLAB_BANK_FEATURES": str(bank_book),
                        "CREDITLAB_BANK_FEATURES_ID_COLUMN": "uscc",
                        "CREDITLAB_BANK_CLIENT_KEY_SHA256": json.dumps(
                            [hashlib.sha256(client_key.encode()).hexdigest()])}
            with serving("bank", bank_env, work / "bank.log") as bank_url:
                loan_system = {"X-API-Key": client_key}
                score = checked(httpx.post(f"{bank_url}/v1/scores", headers=loan_system,
                                           json={"uscc": subject}), 200)
                print(f"[serve] score of the authorized enterprise: PD {score['pd']:.4f}, "
                      f"{score['points']:.0f} points, band {score['band']} "
                      f"({score['band_label']}), model {score['model_version']}")
                for reason in score["reasons"]:
                    print(f"          reason: {json.dumps(reason, ensure_ascii=False)}")
                refused = checked(httpx.post(f"{bank_url}/v1/scores", headers=loan_system,
                                             json={"uscc": unauthorized}), 403)
                print(f"[serve] an enterprise without authorization: 403 "
                      f"{refused['error']['code']}, no score")
    print("[serve] both APIs stopped")


if __name__ == "__main__":
    main()
