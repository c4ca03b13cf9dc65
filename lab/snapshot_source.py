"""A stored feature snapshot as the platform's data source of an experiment.

``[platform] snapshot = N`` in an experiment file names the exact version of
the platform's derived features a model is trained on (:mod:`lab.features`:
numbered, dated, content-hashed snapshots). Training reads a CSV, as for any
other party table, so :func:`export_for_experiment` exports the snapshot once
to ``snapshots/platform-snapshot-N.csv`` beside the experiment file, with the
sidecar :func:`lab.features.export_snapshot` writes, and on every later load
checks that both the store's snapshot and the exported file are unchanged
(content hash of the snapshot, SHA-256 of the file) before reusing it. An
edited export or a snapshot that differs from the one exported is re-exported,
never silently trained on.

Kept out of :mod:`lab.experiment`, which the parties' processes import on
every message: only an experiment that names a snapshot pays for SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from lab.features import SnapshotError, export_snapshot, load_snapshot_info
from lab.store.engine import StoreError, database_url, open_store

__all__ = ["SnapshotSourceError", "export_for_experiment"]


class SnapshotSourceError(Exception):
    """The named snapshot cannot be used; ``problem`` and ``remedy`` go into the TOML error."""

    def __init__(self, problem: str, remedy: str) -> None:
        super().__init__(f"{problem}. Remedy: {remedy}")
        self.problem = problem
        self.remedy = remedy


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reusable(csv: Path, snapshot_id: int, content_sha256: str) -> bool:
    """True when ``csv`` is an untouched export of this very snapshot."""
    sidecar = csv.with_name(csv.name + ".snapshot.json")
    if not (csv.is_file() and sidecar.is_file()):
        return False
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (meta.get("id") == snapshot_id and meta.get("content_sha256") == content_sha256
            and meta.get("file_sha256") == _file_sha256(csv))


def _missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist (opening would create it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def export_for_experiment(snapshot_id: int, folder: Path, store_url: str | None) -> Path:
    """The CSV of snapshot ``snapshot_id`` under ``folder``: reused when verified, else exported.

    Raises
    ------
    SnapshotSourceError
        If the store cannot be opened or holds no such snapshot.
    """
    url = database_url(store_url)
    missing = _missing_sqlite_file(url)
    if missing is not None:
        raise SnapshotSourceError(
            f"the platform store {url!r} does not exist (no file {str(missing)!r})",
            "set [platform] store or $CREDITLAB_DB_URL to the store that holds the snapshot, "
            "or take one there with `creditlab features snapshot --as-of YYYY-MM-DD`")
    try:
        store = open_store(url, migrate=False)
    except StoreError as exc:
        raise SnapshotSourceError(str(exc), "fix [platform] store or $CREDITLAB_DB_URL") from None
    try:
        info = load_snapshot_info(store, snapshot_id)
        csv = folder / f"platform-snapshot-{snapshot_id}.csv"
        if not _reusable(csv, snapshot_id, info.content_sha256):
            export_snapshot(store, snapshot_id, csv)
        return csv
    except SnapshotError as exc:
        raise SnapshotSourceError(f"snapshot {snapshot_id} is not in the store {url!r}",
                                  str(exc).split("Remedy: ")[-1]) from None
    except SQLAlchemyError as exc:
        raise SnapshotSourceError(
            f"the store {url!r} cannot be read ({type(exc).__name__})",
            "check that it is a CreditLab platform store (`creditlab features list`)") from None
    finally:
        store.dispose()
