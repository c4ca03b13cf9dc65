"""``creditlab federation up|down|status``, and ``creditlab run --federation NAME``.

Kept apart from :mod:`lab.cli` so that the deployment commands are one
``register(cli)`` call there; the work itself is in :mod:`lab.deployment`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from lab.deployment import (
    DeploymentError,
    default_directory,
    down,
    resolve_federation,
    run_on_federation,
    status,
    up,
)
from lab.errors import CreditLabError

federation_cli = typer.Typer(
    no_args_is_help=True,
    help="Flower's deployment engine on this machine: a TLS SuperLink with SuperNode "
         "authentication and one SuperNode per party (see docs/deployment.md).")

NameOption = Annotated[str, typer.Option("--name", help="connection name, e.g. loopback")]
DirOption = Annotated[Path | None, typer.Option(
    "--dir", help="federation directory (default .creditlab/federations/NAME, or "
                  "$CREDITLAB_FEDERATIONS/NAME)")]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@federation_cli.command("up")
def up_command(
    experiment: Annotated[Path, typer.Option(
        help="experiment TOML whose [bank]/[platform] data paths the SuperNodes get")],
    name: NameOption = "loopback",
    directory: DirOption = None,
    database: Annotated[bool, typer.Option(
        help="keep the SuperLink's state in <dir>/link/state.db instead of memory")] = False,
) -> None:
    """Start the SuperLink and both SuperNodes (or whichever of them is not running)."""
    try:
        state = up(name, directory or default_directory(name), experiment, database=database)
    except (CreditLabError, OSError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"federation {state.name!r} is up: SuperLink https://{state.address} "
               f"(pid {state.superlink.pid if state.superlink else '?'})")
    for role, node in state.nodes.items():
        typer.echo(f"  {role:<9} SuperNode pid {node.process.pid if node.process else '?'}, "
                   f"runtime port {node.port}, party dir {node.party_dir}")
    typer.echo(f"run a job:  creditlab run {experiment} --federation {state.name}"
               + ("" if directory is None else f" (or --federation {state.directory})"))
    typer.echo(f"stop it:    creditlab federation down --name {state.name}"
               + ("" if directory is None else f" --dir {state.directory}"))


@federation_cli.command("down")
def down_command(name: NameOption = "loopback", directory: DirOption = None) -> None:
    """Stop the federation's processes by their recorded PIDs (SuperNodes first)."""
    try:
        stopped = down(resolve_federation(name, directory))
    except (CreditLabError, OSError) as exc:
        raise _fail(exc) from exc
    for part, was_running in stopped.items():
        typer.echo(f"  {part:<9} {'stopped' if was_running else 'was not running'}")


@federation_cli.command("status")
def status_command(
    name: NameOption = "loopback",
    directory: DirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Which of the federation's processes are alive, and the SuperLink's list of nodes."""
    try:
        report: dict[str, Any] = status(resolve_federation(name, directory))
    except (CreditLabError, OSError) as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    link = report["superlink"]
    typer.echo(f"federation {report['name']!r} at https://{report['address']} "
               f"({report['directory']})")
    typer.echo(f"  superlink {'alive' if link['alive'] else 'down'} (pid {link['pid']})")
    for role, node in report["nodes"].items():
        typer.echo(f"  {role:<9} {'alive' if node['alive'] else 'down'} (pid {node['pid']}, "
                   f"runtime port {node['port']})")
    nodes = report["supernodes"]
    if isinstance(nodes, list):
        typer.echo("flwr supernode list:")
        for node in nodes:
            typer.echo(f"  node {node.get('node-id')}: {node.get('status')} "
                       f"(online since {node.get('online-at')})")
    elif nodes:
        typer.echo(f"flwr supernode list: {nodes}")


def run_with_federation(experiment: Path, federation: str, *, workdir: Path
                        ) -> dict[str, Any]:
    """``creditlab run EXPERIMENT --federation NAME``: the main job through ``flwr run``.

    MLflow records where this command would record a simulation run
    (``MLFLOW_TRACKING_URI`` or ``./mlflow.db``), so both engines land in
    the same place.
    """
    from lab.tracking import tracking_uri

    try:
        return run_on_federation(experiment.resolve(), resolve_federation(federation),
                                 workdir=workdir, tracking_uri=tracking_uri())
    except DeploymentError:
        raise
    except OSError as exc:
        raise DeploymentError(f"could not run on federation {federation!r}: {exc}") from exc


def register(cli: typer.Typer) -> None:
    """Add the ``federation`` command group to the ``creditlab`` CLI."""
    cli.add_typer(federation_cli, name="federation")
