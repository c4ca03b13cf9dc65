"""The platform's ``creditlab`` commands: catalog, ingest, quality, records and repair,
features, generate and the city scenario.

Registered on the main CLI by :func:`register` (one line in :mod:`lab.cli`).
Every command that touches the store opens it from ``--db-url`` or
``$CREDITLAB_DB_URL`` (default: the SQLite file ``creditlab.db`` here) and
migrates it to the newest schema first. Errors a user can fix print one
line (what, where, what to do) and exit with status 2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from lab.errors import CreditLabError

__all__ = ["register"]

DbUrl = Annotated[str | None, typer.Option(
    "--db-url", help="store URL (default: $CREDITLAB_DB_URL, else sqlite:///creditlab.db)")]
By = Annotated[str, typer.Option("--by", help="who acts (kept in the audit log)")]
Reason = Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")]

T = TypeVar("T")


@contextmanager
def _errors() -> Iterator[None]:
    """Turn our errors into one line on stderr and exit status 2."""
    try:
        yield
    except CreditLabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _store(db_url: str | None) -> Any:
    from lab.store import open_store

    return open_store(db_url)


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise CreditLabError(f"{option} {text!r} is not a date. Remedy: write YYYY-MM-DD") from exc


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


# --------------------------------------------------------------------------- catalog


def catalog(
    item: Annotated[str | None, typer.Argument(help="one item (code, number or 中文名)")] = None,
    output: Annotated[str, typer.Option("--format", help="text, markdown or json")] = "text",
) -> None:
    """Print the 10-item credit information catalog (headers, types, units, P fields)."""
    from lab.catalog import CATALOG, PROVIDERS, catalog_as_json, catalog_as_markdown, get_item

    with _errors():
        try:
            items = (get_item(item),) if item else CATALOG
        except KeyError as exc:
            raise CreditLabError(str(exc.args[0])) from exc
        if output == "json":
            typer.echo(catalog_as_json(items))
            return
        if output == "markdown":
            typer.echo(catalog_as_markdown(items))
            return
        if output != "text":
            raise CreditLabError(f"unknown format {output!r}. Remedy: use text, markdown or json")
        for it in items:
            providers = ", ".join(PROVIDERS[c].name_zh for c in it.providers)
            typer.echo(f"{it.number:>2}. {it.name_zh} {it.code} — {it.name_en} [{providers}; "
                       f"{it.delivery.value}]")
            typer.echo(f"    grain: {it.grain}; key: {', '.join(it.key)}")
            for f in it.fields:
                flags = " ".join(x for x in (
                    "required" if f.required else "",
                    "P" if f.sensitivity.value == "P" else "",
                    "P if person" if f.sensitivity.value == "P if natural person" else "",
                    f"[{f.unit}]" if f.unit else "",
                    "/".join(f.choices) if f.choices else "") if x)
                typer.echo(f"      {f.header:<22} {f.name:<28} {f.kind.value:<9} {flags}")


# --------------------------------------------------------------------------- ingest


def ingest(
    item: Annotated[str, typer.Argument(help="catalog item: code, number or 中文名")],
    file: Annotated[Path, typer.Argument(help="the delivered CSV (UTF-8, UTF-8 BOM, GBK) or XLSX")],
    provider: Annotated[str | None, typer.Option(
        help="provider code or Chinese name, needed when the item has several")] = None,
    data_date: Annotated[str | None, typer.Option(
        help="the batch's data date YYYY-MM-DD (default: latest in the file, else today)")] = None,
    by: Annotated[str, typer.Option("--by", help="who ingests")] = "ingest",
    db_url: DbUrl = None,
) -> None:
    """Validate a provider file and store it; bad rows go to the quarantine with reasons."""
    from lab.ingest import ingest_file

    with _errors():
        store = _store(db_url)
        report = ingest_file(store, item, file, provider=provider,
                             data_date=_date(data_date, "--data-date"), actor=by)
    if report.already_ingested:
        typer.echo(f"already ingested as batch {report.batch_id}: nothing changed")
    form = report.file_format + (f", {report.encoding}" if report.encoding else "")
    typer.echo(f"batch {report.batch_id}: {report.item} from {report.provider} ({form}), "
               f"data date {report.data_date}")
    typer.echo(f"  rows {report.rows_total:,}: stored {report.rows_stored:,}, unchanged "
               f"{report.rows_unchanged:,}, new versions {report.rows_superseding:,}, "
               f"quarantined {report.rows_quarantined:,} ({report.seconds:.1f} s)")
    for reason, count in sorted(report.quarantine_by_reason.items(), key=lambda kv: -kv[1]):
        typer.echo(f"    quarantine {reason:<28} {count:,}")
    for reason, count in report.warnings_by_reason.items():
        typer.echo(f"    warning    {reason:<28} {count:,} (stored)")
    if report.rows_quarantined:
        typer.echo("  see `creditlab quarantine BATCH` for file, row, field and reason")


def quarantine(
    batch: Annotated[int, typer.Argument(help="batch id printed by `creditlab ingest`")],
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
    db_url: DbUrl = None,
) -> None:
    """List a batch's quarantined rows: file, row, field, reason (values masked)."""
    from sqlalchemy import func, select

    from lab.store.engine import StoreError
    from lab.store.models import Batch, QuarantinedRow

    with _errors():
        store = _store(db_url)
        with store.session() as session:
            if session.get(Batch, batch) is None:
                raise StoreError(f"there is no batch {batch} in this store. Remedy: use the "
                                 "batch id `creditlab ingest` printed, or check --db-url")
            total = session.scalar(select(func.count()).where(QuarantinedRow.batch_id == batch))
            rows = session.scalars(select(QuarantinedRow).where(
                QuarantinedRow.batch_id == batch).order_by(QuarantinedRow.row).limit(limit)).all()
            for q in rows:
                typer.echo(f"{q.file_name}:{q.row} {q.header or ''} [{q.reason_code}] "
                           f"{q.reason}" + (f" (value {q.value_masked})" if q.value_masked else ""))
    typer.echo(f"{min(total or 0, limit)} of {total or 0} quarantine entries shown")


# --------------------------------------------------------------------------- quality


def quality(
    out: Annotated[Path, typer.Option(help="folder for quality.json and quality.html")] = Path(
        "quality"),
    db_url: DbUrl = None,
) -> None:
    """Data-quality report per provider and item (validity, completeness, uniqueness, lag)."""
    from lab.quality import quality_report, write_report

    with _errors():
        report = quality_report(_store(db_url))
        json_path, html_path = write_report(report, out)
    for e in report.entries:
        typer.echo(f"{e.provider_name} {e.item_name}: {e.rows_delivered:,} rows, validity "
                   f"{_pct(e.validity)}, completeness {_pct(e.completeness)}, uniqueness "
                   f"{_pct(e.uniqueness)}, lag median {e.timeliness_days_median} d")
    typer.echo(f"wrote {json_path} and {html_path}")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


# --------------------------------------------------------------------------- records & repair


def records(
    item: Annotated[str, typer.Argument(help="catalog item")],
    entity: Annotated[str, typer.Option(help="USCC or id number the records are about")],
    authorised: Annotated[bool, typer.Option(
        help="show personal fields unmasked (only under an authorization)")] = False,
    db_url: DbUrl = None,
) -> None:
    """Show an entity's current records in one item (withdrawn ones never appear)."""
    from lab.repair import current_records

    with _errors():
        views = current_records(_store(db_url), item, entity, authorised=authorised)
    _print_json([v.model_dump(mode="json") for v in views])


def _repair_action(action: Callable[..., T], item: str, record_id: int, by: str, reason: str,
                   db_url: str | None, **extra: Any) -> T:
    with _errors():
        return action(_store(db_url), item, record_id, actor=by, reason=reason, **extra)


def dispute(item: Annotated[str, typer.Argument()], record_id: Annotated[int, typer.Argument()],
            by: By, reason: Reason, db_url: DbUrl = None) -> None:
    """Flag a record as under objection (异议); it stays current until resolved."""
    from lab.repair import dispute as do

    event = _repair_action(do, item, record_id, by, reason, db_url)
    typer.echo(f"{item} record {record_id} disputed (audit event {event})")


def resolve(item: Annotated[str, typer.Argument()], record_id: Annotated[int, typer.Argument()],
            by: By, reason: Reason, db_url: DbUrl = None) -> None:
    """Close an objection with the record unchanged."""
    from lab.repair import resolve_dispute as do

    event = _repair_action(do, item, record_id, by, reason, db_url)
    typer.echo(f"{item} record {record_id}: objection resolved (audit event {event})")


def correct(
    item: Annotated[str, typer.Argument()],
    record_id: Annotated[int, typer.Argument()],
    by: By,
    reason: Reason,
    set_: Annotated[list[str], typer.Option("--set", help="FIELD=VALUE (identifier or 中文表头); "
                                            "repeat for several")],
    db_url: DbUrl = None,
) -> None:
    """Store a corrected version of a record (更正); the old version stays in history."""
    from lab.repair import correct as do

    changes: dict[str, str] = {}
    with _errors():
        for pair in set_:
            if "=" not in pair:
                raise CreditLabError(f"--set {pair!r} has no '='. Remedy: write FIELD=VALUE")
            name, value = pair.split("=", 1)
            if name.strip() in changes:
                raise CreditLabError(f"--set {name.strip()} is given twice. Remedy: give each "
                                     "field once")
            changes[name.strip()] = value.strip()
    new_id = _repair_action(do, item, record_id, by, reason, db_url, changes=changes)
    typer.echo(f"{item} record {record_id} corrected: new version is record {new_id}")


def repair(item: Annotated[str, typer.Argument()], record_id: Annotated[int, typer.Argument()],
           by: By, reason: Reason, db_url: DbUrl = None) -> None:
    """Credit repair (信用修复): withdraw a record; no longer shown, shared or used."""
    from lab.repair import withdraw as do

    event = _repair_action(do, item, record_id, by, reason, db_url)
    typer.echo(f"{item} record {record_id} withdrawn (audit event {event}); it stays in history")


def history(item: Annotated[str, typer.Argument()], record_id: Annotated[int, typer.Argument()],
            db_url: DbUrl = None) -> None:
    """Every version of a record and every audited change (personal fields masked)."""
    from lab.repair import history as do

    with _errors():
        chain = do(_store(db_url), item, record_id)
    _print_json(chain.model_dump(mode="json"))


# --------------------------------------------------------------------------- features

features_app = typer.Typer(no_args_is_help=True, help="Derived enterprise features: "
                           "definitions, versioned snapshots, export for experiments.")


@features_app.command("definitions")
def features_definitions() -> None:
    """Print every feature's written definition and no-data default."""
    from lab.features import DEFINITIONS, DEFINITIONS_VERSION

    typer.echo(f"definitions version {DEFINITIONS_VERSION}")
    for d in DEFINITIONS:
        typer.echo(f"{d.name:<34} [{', '.join(d.sources)}; default {d.default:g}]\n"
                   f"    {d.definition}")


@features_app.command("snapshot")
def features_snapshot(
    as_of: Annotated[str, typer.Option(help="as-of date YYYY-MM-DD (nothing later is read)")],
    by: Annotated[str, typer.Option("--by", help="who takes it")] = "features",
    note: Annotated[str | None, typer.Option(help="free text kept with the snapshot")] = None,
    db_url: DbUrl = None,
) -> None:
    """Compute every enterprise's features as of a date and store them as a new snapshot."""
    from lab.features import take_snapshot

    with _errors():
        info = take_snapshot(_store(db_url), _date(as_of, "--as-of"), actor=by,  # type: ignore[arg-type]
                             note=note)
    typer.echo(f"snapshot {info.id}: {info.n_entities:,} enterprises × "
               f"{len(info.feature_names)} features as of {info.as_of} (definitions "
               f"{info.definitions_version}, sha256 {info.content_sha256[:12]}…)")


@features_app.command("list")
def features_list(db_url: DbUrl = None) -> None:
    """List stored snapshots, newest first."""
    from lab.features import list_snapshots

    with _errors():
        for info in list_snapshots(_store(db_url)):
            typer.echo(f"{info.id:>4}  as of {info.as_of}  {info.n_entities:>9,} enterprises  "
                       f"{info.definitions_version}  {info.created_at:%Y-%m-%d %H:%M}  "
                       f"{info.note or ''}")


@features_app.command("export")
def features_export(
    snapshot: Annotated[int, typer.Argument(help="snapshot id")],
    out: Annotated[Path, typer.Argument(help="CSV to write (the experiment's [platform] data)")],
    db_url: DbUrl = None,
) -> None:
    """Write a snapshot as the platform CSV an experiment names, with a .snapshot.json sidecar."""
    from lab.features import export_snapshot

    with _errors():
        path = export_snapshot(_store(db_url), snapshot, out)
    typer.echo(f"wrote {path} and {path.name}.snapshot.json; in the experiment: [platform] "
               f'data = "{path}", id_column = "uscc", id_kind = "uscc"')


# --------------------------------------------------------------------------- generate, city


def generate(
    enterprises: Annotated[int, typer.Option(help="number of enterprises")],
    seed: Annotated[int, typer.Option(help="random seed; same seed, same files")] = 0,
    out: Annotated[Path, typer.Option(help="folder to write")] = Path("city"),
    dirty_rate: Annotated[float, typer.Option(help="share of rows given one defect")] = 0.01,
    banks: Annotated[int, typer.Option(help="number of loan books")] = 3,
    as_of: Annotated[str, typer.Option(help="last day of the data YYYY-MM-DD")] = "2025-06-30",
) -> None:
    """Write a synthetic Tianjin-like city: provider files, loan books and a manifest."""
    from lab.generate import generate_city

    with _errors():
        day = _date(as_of, "--as-of")
        assert day is not None
        try:
            manifest = generate_city(out, enterprises=enterprises, seed=seed,
                                     dirty_rate=dirty_rate, banks=banks, as_of=day,
                                     progress=lambda line: typer.echo(line, err=True))
        except ValueError as exc:
            raise CreditLabError(f"{exc}. Remedy: fix the option") from exc
    for entry in manifest.files.values():
        typer.echo(f"{entry.file:<32} {entry.rows:>10,} rows  {len(entry.dirty):>7,} dirty  "
                   f"{len(entry.normalised):>6,} to normalise  ({entry.encoding or 'xlsx'})")
    for bank in manifest.banks:
        typer.echo(f"{bank['file']:<32} {bank['rows']:>10,} loans {bank['defaults']:>7,} "
                   "defaults")
    typer.echo(f"manifest: {out / 'manifest.json'} ({manifest.seconds:.1f} s)")


def city(
    enterprises: Annotated[int, typer.Option(help="number of enterprises in the city")] = 12_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    workdir: Annotated[Path, typer.Option(help="folder for everything the scenario writes")] = Path(
        "runs/city"),
    key_bits: Annotated[int, typer.Option(help="Paillier key size")] = 2048,
    test_only_keys: Annotated[bool, typer.Option(
        help="allow key_bits < 2048 (tests only)")] = False,
    quiet: Annotated[bool, typer.Option(help="no progress bars")] = False,
) -> None:
    """Generate → ingest → quality → features → joint training; compare with bank-only."""
    from lab.city import run_city

    with _errors():
        result = run_city(workdir, enterprises=enterprises, seed=seed, key_bits=key_bits,
                          test_only_keys=test_only_keys, quiet=quiet, echo=typer.echo)
    if result["ledger_plaintext_violations"]:
        typer.echo("privacy ledger found plaintext on the wire", err=True)
        raise typer.Exit(3)


def register(cli: typer.Typer) -> None:
    """Add the platform commands to the main ``creditlab`` CLI."""
    for function in (catalog, ingest, quarantine, quality, records, dispute, resolve, correct,
                     repair, history, generate, city):
        cli.command()(function)
    cli.add_typer(features_app, name="features")
