"""``creditlab serve``: bad settings stop it with one line per problem, before uvicorn starts.

A wrong setting used to surface as a worker's traceback (or, for a misspelt
bank name, only as 404s later); these tests hold the command to a clear
message naming the environment variable and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_server_support import PEPPER, World, make_world, trained  # noqa: F401 - fixtures
from typer.testing import CliRunner

from lab.cli import cli
from server.cli import bank_warnings, unregistered_banks
from server.platform import create_app


@pytest.fixture(scope="module")
def world(trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:  # noqa: F811
    yield from make_world(trained, tmp_path_factory.mktemp("platform"))


def _serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str,
           **env: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    for name in ("CREDITLAB_KEY_PEPPER", "CREDITLAB_MODELS", "CREDITLAB_DB_URL",
                 "CREDITLAB_BANK_MODEL_DIR", "CREDITLAB_BANK_PLATFORM_URL",
                 "CREDITLAB_BANK_PLATFORM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve", command, "--port", "1"])
    return result.exit_code, result.output


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "CREDITLAB_KEY_PEPPER: Field required"),
    ({"CREDITLAB_KEY_PEPPER": "short"}, "CREDITLAB_KEY_PEPPER: CREDITLAB_KEY_PEPPER must be at "
                                        "least 16 characters"),
    ({"CREDITLAB_KEY_PEPPER": "   "}, "CREDITLAB_KEY_PEPPER must be at least 16 characters"),
    ({"CREDITLAB_KEY_PEPPER": PEPPER, "CREDITLAB_MODELS": '["runs/x/platform/model"]'},
     'CREDITLAB_MODELS: CREDITLAB_MODELS must be a JSON object naming the bank'),
    ({"CREDITLAB_KEY_PEPPER": PEPPER, "CREDITLAB_MODELS": "{runs/x: 甲银行}"},
     "CREDITLAB_MODELS is not valid JSON"),
    ({"CREDITLAB_KEY_PEPPER": PEPPER, "CREDITLAB_MODELS": '{"no/such/dir": "甲银行"}'},
     "no/such/dir/part.json: no part description"),
    ({"CREDITLAB_KEY_PEPPER": PEPPER, "CREDITLAB_DB_URL": "creditlab.db"},
     "CREDITLAB_DB_URL is not a database URL"),
    ({"CREDITLAB_KEY_PEPPER": PEPPER, "CREDITLAB_DB_URL": "sqlite:////no/such/folder/x.db"},
     "the SQLite store's folder '/no/such/folder' does not exist"),
    ({"CREDITLAB_KEY_PEPPER": PEPPER,
      "CREDITLAB_DB_URL": "postgresql+psycopg://creditlab:pw-never-shown@127.0.0.1:1/x"},
     "the database of CREDITLAB_DB_URL cannot be used"),
])
def test_bad_platform_settings_stop_with_one_clear_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str],
        expected: str) -> None:
    code, output = _serve(monkeypatch, tmp_path, "platform", **env)
    assert code == 2
    assert output.startswith("error: ") and expected in output
    if "part.json" in expected:
        assert "(files come from CREDITLAB_MODELS and CREDITLAB_FEATURES)" in output
    assert "Traceback" not in output and "pydantic.dev" not in output
    assert "pw-never-shown" not in output


def test_bad_bank_settings_name_every_missing_variable(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    code, output = _serve(monkeypatch, tmp_path, "bank")
    assert code == 2
    assert "Traceback" not in output
    for name in ("CREDITLAB_BANK_MODEL_DIR", "CREDITLAB_BANK_PLATFORM_URL",
                 "CREDITLAB_BANK_PLATFORM_API_KEY"):
        assert f"{name}: Field required" in output


def test_a_model_served_to_an_unregistered_bank_is_reported(world: World) -> None:
    assert unregistered_banks(world.platform_app) == []
    (model_dir,) = world.platform_settings.models
    misspelt = create_app(world.platform_settings.model_copy(
        update={"models": {model_dir: "甲银行 "}}))
    try:
        assert unregistered_banks(misspelt) == ["甲银行 "]
    finally:
        misspelt.state.platform.database.dispose()


@pytest.mark.parametrize(("url", "expected"), [
    ("not-a-url", "give the platform API's base URL, e.g."),
    ("http://127.0.0.1:8100/v1", "without /v1"),
])
def test_a_platform_url_that_cannot_work_is_refused_at_start(
        world: World, url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        world.bank_settings(platform_url=url)
    assert world.bank_settings(platform_url="https://gateway.example/credit-platform")


def test_bank_settings_that_would_refuse_everything_are_warned(world: World) -> None:
    settings = world.bank_settings(client_key_sha256=[])
    warnings = bank_warnings(settings, {"CREDITLAB_BANK_MODLE_DIR": "x", "CREDITLAB_DB_URL": "y",
                                        "CREDITLAB_BANK_MODEL_DIR": "z"})
    assert len(warnings) == 2
    assert "CREDITLAB_BANK_CLIENT_KEY_SHA256 is empty" in warnings[0]
    assert warnings[1].startswith("CREDITLAB_BANK_MODLE_DIR is not a setting")
    assert bank_warnings(world.bank_settings(), {"CREDITLAB_BANK_MODEL_DIR": "z"}) == []


def test_a_missing_bank_feature_file_is_named(world: World, tmp_path: Path) -> None:
    from server.bank import create_app as create_bank_app

    with pytest.raises(FileNotFoundError, match="no such serving feature file"):
        create_bank_app(world.bank_settings(features=tmp_path / "absent.csv"))
