"""``creditlab serve platform|bank|bootstrap-operator``: run the APIs with uvicorn.

Settings come from the environment (``CREDITLAB_*`` for the platform,
``CREDITLAB_BANK_*`` for the bank; see :mod:`server.config`), exactly as
``create_app()`` reads them, so the served app is the tested one. Uvicorn's
access log is off: request lines carry subject ids in their paths, and the
platform's audit table is the record of every access.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["register"]

serve = typer.Typer(no_args_is_help=True, help="Run the platform API or the bank scoring API.")

Host = Annotated[str, typer.Option(help="interface to bind (loopback by default)")]
Workers = Annotated[int, typer.Option(min=1, help="uvicorn worker processes")]


def _run(factory: str, host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="info")


@serve.command("platform")
def serve_platform(host: Host = "127.0.0.1",
                   port: Annotated[int, typer.Option(help="TCP port")] = 8100,
                   workers: Workers = 1) -> None:
    """The platform API (queries, reports, authorizations, audit, partial scores)."""
    from server.config import PlatformSettings

    PlatformSettings.from_env()  # fail here, with the message, not inside a worker
    _run("server.platform:create_app", host, port, workers)


@serve.command("bank")
def serve_bank(host: Host = "127.0.0.1",
               port: Annotated[int, typer.Option(help="TCP port")] = 8200,
               workers: Workers = 1) -> None:
    """The bank scoring API (federated inference with the platform)."""
    from server.config import BankSettings

    BankSettings.from_env()
    _run("server.bank:create_app", host, port, workers)


@serve.command("bootstrap-operator")
def bootstrap(name: Annotated[str, typer.Argument(help="the operator institution's name")]
              ) -> None:
    """Create the first operator institution and print its API key (shown once)."""
    from server.config import PlatformSettings
    from server.platform.admin import bootstrap_operator
    from server.platform.db import Database

    settings = PlatformSettings.from_env()
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
