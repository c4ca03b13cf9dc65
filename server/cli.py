"""``creditlab serve platform|bank|bootstrap-operator``: run the APIs with uvicorn.

Settings come from the environment (``CREDITLAB_*`` for the platform,
``CREDITLAB_BANK_*`` for the bank; see :mod:`server.config`), exactly as
``create_app()`` reads them, so the served app is the tested one. Uvicorn's
access log is off: request lines carry subject ids in their paths, and the
platform's audit table is the record of every access.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic import ValidationError

    from server.config import BankSettings

__all__ = ["register"]

T = TypeVar("T")

serve = typer.Typer(no_args_is_help=True, help="Run the platform API or the bank scoring API.")

Host = Annotated[str, typer.Option(help="interface to bind (loopback by default)")]
Workers = Annotated[int, typer.Option(min=1, help="uvicorn worker processes")]


def settings_problems(exc: ValidationError, env_prefix: str) -> str:
    """One line per bad setting, named by its environment variable, without input values."""
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        name = env_prefix + loc[0].upper() if loc else env_prefix
        inner = f" ({'.'.join(loc[1:])})" if len(loc) > 1 else ""
        lines.append(f"  {name}{inner}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


_FILES = {"CREDITLAB_": "CREDITLAB_MODELS and CREDITLAB_FEATURES",
          "CREDITLAB_BANK_": "CREDITLAB_BANK_MODEL_DIR, CREDITLAB_BANK_MANIFEST and "
                             "CREDITLAB_BANK_FEATURES"}
"""The settings that name files, per app: where a missing or bad file comes from."""


def _preflight(build: Callable[[], T], env_prefix: str) -> T:
    """Build the app once here, so a bad setting is one clear line, not a worker's traceback.

    Everything ``create_app`` opens (settings, database and migrations, model
    parts, serving features) is checked before uvicorn starts.
    """
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from lab.errors import CreditLabError

    try:
        return build()
    except ValidationError as exc:
        typer.echo(f"error: the settings are not valid:\n{settings_problems(exc, env_prefix)}",
                   err=True)
        raise typer.Exit(2) from exc
    except ArgumentError as exc:
        typer.echo(f"error: CREDITLAB_DB_URL is not a database URL ({exc}); e.g. "
                   "sqlite:///creditlab.db or postgresql+psycopg://user@host/db", err=True)
        raise typer.Exit(2) from exc
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(f"error: the database of CREDITLAB_DB_URL cannot be used: {cause}",
                   err=True)
        raise typer.Exit(2) from exc
    except (CreditLabError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}\n  (files come from {_FILES[env_prefix]})", err=True)
        raise typer.Exit(2) from exc


def _close(app: FastAPI) -> None:
    """Run the app's shutdown (closes its database pools and HTTP client)."""
    async def cycle() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(cycle())


def _run(app: FastAPI, factory: str, host: str, port: int, workers: int) -> None:
    """Serve ``app`` itself in one process; several workers each build theirs from ``factory``."""
    import uvicorn

    if workers == 1:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
        return
    _close(app)
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="info")


def unregistered_banks(app: FastAPI) -> list[str]:
    """Bank names in ``CREDITLAB_MODELS`` that no institution with role bank carries."""
    from sqlalchemy import select

    from server.platform.tables import Institution, Role

    state = app.state.platform
    with state.database.session() as session:
        banks = set(session.scalars(select(Institution.name)
                                    .where(Institution.role == Role.bank)))
    return sorted(set(state.settings.models.values()) - banks)


@serve.command("platform")
def serve_platform(host: Host = "127.0.0.1",
                   port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8100,
                   workers: Workers = 1) -> None:
    """The platform API (queries, reports, authorizations, audit, partial scores)."""
    from server.platform import create_app

    app = _preflight(create_app, "CREDITLAB_")
    settings = app.state.platform.settings
    if settings.features is not None and not settings.models:
        typer.echo("warning: CREDITLAB_FEATURES is set but CREDITLAB_MODELS serves no model "
                   "part, so no partial score can be made", err=True)
    for name in unregistered_banks(app):
        typer.echo(f"warning: CREDITLAB_MODELS serves a model part to {name!r}, but no "
                   "institution with role bank has that name yet; register it "
                   "(POST /v1/institutions) or correct the name, or its partial scores "
                   "answer 404 model_not_found", err=True)
    _run(app, "server.platform:create_app", host, port, workers)


@serve.command("bank")
def serve_bank(host: Host = "127.0.0.1",
               port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8200,
               workers: Workers = 1) -> None:
    """The bank scoring API (federated inference with the platform)."""
    from server.bank import create_app

    app = _preflight(create_app, "CREDITLAB_BANK_")
    for warning in bank_warnings(app.state.bank.settings, os.environ):
        typer.echo(f"warning: {warning}", err=True)
    _run(app, "server.bank:create_app", host, port, workers)


def bank_warnings(settings: BankSettings, environ: Mapping[str, str]) -> list[str]:
    """Settings that start but would not serve: no client key, a misspelt variable."""
    warnings = []
    if not settings.client_key_sha256:
        warnings.append("CREDITLAB_BANK_CLIENT_KEY_SHA256 is empty: every request will be "
                        "refused (401); list the SHA-256 digests of your loan systems' keys")
    known = {settings.env_prefix + name.upper() for name in type(settings).model_fields}
    for name in sorted(n for n in environ if n.startswith(settings.env_prefix)):
        if name not in known:
            warnings.append(f"{name} is not a setting and is ignored; the settings are "
                            f"{', '.join(sorted(known))}")
    return warnings


@serve.command("bootstrap-operator")
def bootstrap(name: Annotated[str, typer.Argument(help="the operator institution's name")]
              ) -> None:
    """Create the first operator institution and print its API key (shown once)."""
    from server.config import PlatformSettings
    from server.platform.admin import bootstrap_operator
    from server.platform.db import Database

    settings = _preflight(PlatformSettings.from_env, "CREDITLAB_")
    database = Database(settings.db_url, create_tables=settings.create_tables)
    try:
        key = bootstrap_operator(database, settings, name)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        database.dispose()
    typer.echo(key)


def register(cli: typer.Typer) -> None:
    """Add the ``serve`` command group to the ``creditlab`` CLI."""
    cli.add_typer(serve, name="serve")
