"""Settings of the two apps, from the environment or built in code.

Why one pydantic model per app with a :meth:`from_env` constructor (the shape
of pydantic-settings, without the extra dependency): the factories
``create_app(settings=None)`` take a settings object, tests build it in code,
and ``creditlab serve`` / uvicorn build it from ``CREDITLAB_*`` variables — the
same validated object either way, so a deployment cannot start with a
setting the tests never saw.

Environment variables are ``<PREFIX><FIELD>`` upper-cased (e.g.
``CREDITLAB_DB_URL`` for the platform's ``db_url``, ``CREDITLAB_BANK_PLATFORM_URL``
for the bank's ``platform_url``). Lists, dicts and nested models are JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from models.scorecard import (
    DEFAULT_BANDS,
    Calibration,
    RiskBand,
    ScorecardScaling,
    check_bands,
)

__all__ = ["BankSettings", "PlatformSettings"]


class _EnvSettings(BaseModel):
    """Settings read from ``<prefix><FIELD>`` environment variables by :meth:`from_env`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env_prefix: ClassVar[str] = "CREDITLAB_"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build from the environment (``os.environ`` by default), then ``overrides``.

        Values that look like JSON arrays or objects are decoded, so list and
        model fields can be set from one variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(cls.env_prefix + name.upper())
            if raw is None:
                continue
            text = raw.strip()
            try:
                values[name] = json.loads(text) if text.startswith(("[", "{")) else raw
            except json.JSONDecodeError as exc:
                raise ValueError(f"{cls.env_prefix}{name.upper()} is not valid JSON "
                                 f"({exc.msg} at character {exc.pos}); check its quoting"
                                 ) from None
        values.update(overrides)
        return cls.model_validate(values)


class PlatformSettings(_EnvSettings):
    """The platform API's settings.

    Parameters
    ----------
    db_url : str
        SQLAlchemy URL of the platform store (``CREDITLAB_DB_URL``); the API's
        own tables (institutions, keys, authorizations, audit) live there too,
        next to the catalog tables, so an access and its audit row share one
        database. SQLite file by default.
    key_pepper : SecretStr
        Server-side secret mixed into every API-key digest
        (``CREDITLAB_KEY_PEPPER``): a copy of the key table alone cannot be
        used to test guessed keys. Required; at least 16 characters.
    models : dict
        Directory of each platform model part (``save_part`` output) this
        platform serves partial scores for → the name of the bank institution
        that trained it jointly with the platform, the only one it answers
        (``CREDITLAB_MODELS='{"runs/<exp>/<run>/platform/model": "某银行"}'``).
        Why bound: the platform part's weights are that bank's model; another
        bank querying it, even for subjects that authorized that other bank,
        could fit the weights from the answers.
    features : Path, optional
        CSV of the platform's serving features, one row per subject, with the
        models' feature columns (the experiment's platform table, or a feature
        snapshot). Required when ``models`` is not empty.
    features_id_column : str
        The id column of ``features``.
    feature_items : dict
        Catalog item number (1..10) of every platform feature: partial-score
        reasons are reported per catalog item, never per feature.
    create_tables : bool
        Migrate the API's tables to the newest revision on start (Alembic,
        ``server/platform/migrations``; a no-op when current). False when the
        app's database user may not change the schema and a deployment step
        migrates instead.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    db_url: str = "sqlite:///creditlab.db"
    key_pepper: SecretStr
    models: dict[Path, str] = Field(default_factory=dict)
    features: Path | None = None
    features_id_column: str = "id"
    feature_items: dict[str, int] = Field(default_factory=dict)
    create_tables: bool = True

    @field_validator("key_pepper")
    @classmethod
    def _pepper_is_long(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError(
                "CREDITLAB_KEY_PEPPER must be at least 16 characters; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models_name_a_bank(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise ValueError(
                "CREDITLAB_MODELS must be a JSON object naming the bank institution each "
                'model part is served to: {"<model dir>": "<bank institution name>"}')
        unnamed = [str(path) for path, bank in value.items()
                   if not isinstance(bank, str) or not bank.strip()]
        if unnamed:
            raise ValueError(
                f"CREDITLAB_MODELS must name the bank institution of every model part; "
                f"none given for {', '.join(unnamed)}. Use a JSON object "
                '{"<model dir>": "<bank institution name>"}')
        return value

    @field_validator("feature_items")
    @classmethod
    def _items_exist(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {name: item for name, item in value.items() if not 1 <= item <= 10}
        if bad:
            raise ValueError(f"catalog items are numbered 1..10; got {bad}")
        return value


class BankSettings(_EnvSettings):
    """The bank scoring API's settings (prefix ``CREDITLAB_BANK_``).

    Parameters
    ----------
    model_dir : Path
        The bank's model part (``runs/<exp>/<run>/bank/model``).
    manifest : Path, optional
        The run's ``manifest.json``, naming the platform part the bank part
        was trained with; ``model_dir/../../manifest.json`` when omitted.
    platform_url : str
        Base URL of the platform API.
    platform_api_key : SecretStr
        This bank's key at the platform (role bank).
    platform_timeout_s : float
        Per-call timeout to the platform; past it the bank answers 503.
    features : Path, optional
        CSV of the bank's own features per customer (its own store), used
        when a request does not carry the features itself.
    features_id_column : str
        The id column of ``features``.
    client_key_sha256 : list of str
        SHA-256 hex digests of the keys the bank's loan systems use to call
        this API (the bank's own clients; the keys themselves are not kept).
    scaling, calibration, bands
        Score scale (default 600 points at 50:1, 20 points to double),
        logit calibration (identity by default) and risk bands, best first.
    reason_codes : int
        How many adverse reasons to return at most.
    retry_after_s : int
        The ``Retry-After`` hint sent when the platform is unreachable.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    env_prefix: ClassVar[str] = "CREDITLAB_BANK_"
    model_dir: Path
    manifest: Path | None = None
    platform_url: str
    platform_api_key: SecretStr
    platform_timeout_s: float = Field(default=2.0, gt=0)
    features: Path | None = None
    features_id_column: str = "id"
    client_key_sha256: list[str] = Field(default_factory=list)
    scaling: ScorecardScaling = ScorecardScaling()
    calibration: Calibration = Calibration()
    bands: tuple[RiskBand, ...] = DEFAULT_BANDS
    reason_codes: int = Field(default=4, ge=0, le=20)
    retry_after_s: int = Field(default=5, ge=1)

    @field_validator("platform_url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("give the platform API's base URL, e.g. https://platform.example:8100")
        if parsed.path.rstrip("/").endswith("/v1"):
            raise ValueError("give the platform API's base URL without /v1; the /v1 routes "
                             "are added to it")
        return value

    @field_validator("bands")
    @classmethod
    def _bands_are_ordered(cls, value: tuple[RiskBand, ...]) -> tuple[RiskBand, ...]:
        return check_bands(value)

    @field_validator("client_key_sha256")
    @classmethod
    def _digests_are_hex(cls, value: list[str]) -> list[str]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(
                    "client_key_sha256 holds lower-case SHA-256 hex digests (64 characters) "
                    "of the client keys, not the keys"
                )
        return value

    @property
    def manifest_path(self) -> Path:
        """Where the run manifest is read from."""
        return self.manifest or self.model_dir.parent.parent / "manifest.json"
