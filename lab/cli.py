"""The ``creditlab`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lab.errors import CreditLabError

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="CreditLab: privacy-preserving joint credit-scoring lab.")

SUMMARY_KEYS = (
    "test_auc", "centralized_taylor_test_auc", "centralized_test_auc", "bank_only_test_auc",
    "test_ks", "test_gini", "key_bits", "rows_bank", "rows_platform", "rows_aligned", "epochs",
    "best_epoch", "wall_seconds", "ledger_messages", "ledger_bytes",
    "ledger_plaintext_violations", "mlflow_run_id", "run_dir",
)


@cli.command()
def run(
    experiment: Annotated[Path, typer.Argument(
        help="experiment TOML file, e.g. examples/default_credit.toml")],
    workdir: Annotated[Path, typer.Option(help="where run folders are written")] = Path("runs"),
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
    federation: Annotated[str | None, typer.Option(
        help="run on the deployment engine through `flwr run`, on a federation started by "
             "`creditlab federation up` (its name or directory)")] = None,
) -> None:
    """Align, train and evaluate one experiment (Flower simulation, or --federation)."""
    from lab.run import run_experiment

    try:
        if federation:
            from lab.cli_federation import run_with_federation

            summary = run_with_federation(experiment, federation, workdir=workdir)
        else:
            summary, _ = run_experiment(experiment, workdir=workdir, quiet=quiet)
    except CreditLabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("\nsummary")
    for key in SUMMARY_KEYS:
        value = summary.get(key)
        shown = f"{value:.4f}" if isinstance(value, float) and key != "wall_seconds" else value
        typer.echo(f"  {key:<30} {shown}")
    typer.echo(f"\nfull summary: {Path(summary['run_dir']) / 'summary.json'}")
    if summary["ledger_plaintext_violations"]:
        typer.echo("privacy ledger found plaintext on the wire: see ledger.json", err=True)
        raise typer.Exit(3)


@cli.command()
def show(summary: Annotated[Path, typer.Argument(help="a run's summary.json")]) -> None:
    """Print a run's summary."""
    json.dump(json.loads(summary.read_text()), sys.stdout, indent=2)
    typer.echo()


from lab.cli_federation import register  # noqa: E402  (deployment commands)

register(cli)


from lab.cli_platform import register as register_platform  # noqa: E402

register_platform(cli)


from server.cli import register as register_serve  # noqa: E402  (creditlab serve …)

register_serve(cli)


def main() -> None:
    cli()
