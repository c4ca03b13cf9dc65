"""Benchmark provider ingestion (lab.ingest): read + validate + store of one million
electricity rows, on SQLite and on PostgreSQL.

What it measures
----------------
The generator (:mod:`lab.generate`) writes one electricity file (电费信息,
23 catalog columns, UTF-8 CSV) of about a million rows — 87,800 enterprises
× 12 monthly rows, 1 % of rows dirty — the shape State Grid Tianjin
delivers. Each backend then gets a fresh, empty, migrated store and one
call of :func:`lab.ingest.ingest_file` on that file: decode and parse,
validate every cell (USCCs through :mod:`crypto.identifiers`), find
duplicates, compare with the store, bulk-load the valid rows and the
quarantine, commit. Reported per backend:

* ``rows_per_s`` — file rows / wall seconds of the whole call (the goal on
  SQLite is ≥ 50,000 rows/s on this 2-core machine);
* ``rows_per_cpu_s`` — the same per CPU-second of this process (pyarrow's
  parser threads included), which load from other jobs on a shared machine
  does not inflate;
* the split into read / validate / store seconds;
* a second call on a copy of the file with other line endings (same rows,
  other bytes, so not recognised as the same file): every row is compared
  and found unchanged, nothing stored — the cost of a monthly re-delivery;
* the check that stored + quarantined = rows, and that the quarantine holds
  exactly the rows the generator's manifest marks dirty.

Ratios (PostgreSQL / SQLite) are taken from the same run. Not a test: no
timing is asserted anywhere.

Usage (from the repository root; PostgreSQL needs a server, e.g.
``export CREDITLAB_TEST_PG_URL="$(.ci/start-postgres.sh)"``)::

    .venv/bin/python bench/ingest/run.py                  # writes bench/ingest/results.json
    .venv/bin/python bench/ingest/run.py --enterprises 8780 --out /tmp/small.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make `lab` importable
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
import pyarrow  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from lab.generate import generate_city  # noqa: E402
from lab.ingest import ingest_file  # noqa: E402
from lab.store import open_store  # noqa: E402
from lab.store.models import QuarantinedRow  # noqa: E402

HERE = Path(__file__).resolve().parent
GOAL_SQLITE_ROWS_PER_S = 50_000


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _machine(pg_version: str | None) -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql_server": pg_version,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _timed_ingest(store: Any, path: Path) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    report = ingest_file(store, "electricity", path, data_date=dt.date(2025, 6, 30),
                         received_at=dt.datetime(2025, 7, 15, tzinfo=dt.UTC), actor="bench")
    return report, time.perf_counter() - wall, time.process_time() - cpu


def _run_backend(name: str, url: str, file: Path, copy: Path, dirty: set[tuple[int, str, str]]
                 ) -> dict[str, Any]:
    store = open_store(url)
    report, wall, cpu = _timed_ingest(store, file)
    with store.session() as session:
        found = set(session.execute(select(QuarantinedRow.row, QuarantinedRow.field,
                                           QuarantinedRow.reason_code)).all())
    again, wall2, cpu2 = _timed_ingest(store, copy)
    store.dispose()
    result = {
        "backend": name,
        "rows": report.rows_total,
        "rows_stored": report.rows_stored,
        "rows_quarantined": report.rows_quarantined,
        "stored_plus_quarantined_equals_rows":
            report.rows_stored + report.rows_quarantined == report.rows_total,
        "quarantine_equals_manifest": found == dirty,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "rows_per_s": round(report.rows_total / wall),
        "rows_per_cpu_s": round(report.rows_total / cpu),
        "phase_seconds": report.phase_seconds,
        "redelivery": {
            "rows_unchanged": again.rows_unchanged,
            "rows_stored": again.rows_stored,
            "wall_seconds": round(wall2, 2),
            "rows_per_s": round(again.rows_total / wall2),
            "rows_per_cpu_s": round(again.rows_total / cpu2),
        },
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enterprises", type=int, default=87_800,
                        help="× 12 monthly rows × 95 %% with a grid account ≈ rows")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--pg-url", default=os.environ.get("CREDITLAB_TEST_PG_URL"),
                        help="PostgreSQL server for the second run (a database is created)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="creditlab-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        manifest = generate_city(folder / "city", enterprises=args.enterprises, seed=args.seed,
                                 items=("electricity",), csv_only=True, banks=0)
        entry = manifest.files["electricity"]
        file = folder / "city" / entry.file
        file_mib = round(file.stat().st_size / 2**20, 1)
        copy = folder / "redelivery.csv"
        copy.write_bytes(file.read_bytes().replace(b"\n", b"\r\n"))
        dirty = {(d["row"], d["field"], d["reason"]) for d in entry.dirty}
        os.sync()  # the generator's 0.5 GB must not be written back while ingestion is timed
        print(f"generated {entry.rows:,} rows in {time.perf_counter() - started:.0f} s "
              f"({file.stat().st_size / 2**20:.0f} MiB)", flush=True)

        pg_version = None
        admin = None
        pg_db_url = None
        if args.pg_url:
            base = make_url(args.pg_url).set(drivername="postgresql+psycopg")
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            name = f"creditlab_bench_{secrets.token_hex(4)}"
            with admin.connect() as connection:
                pg_version = connection.execute(text("show server_version")).scalar()
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            pg_db_url = base.set(database=name).render_as_string(hide_password=False)
        machine = _machine(pg_version)

        runs = [_run_backend("sqlite", f"sqlite:///{folder / 'bench.db'}", file, copy, dirty)]
        if pg_db_url is not None and admin is not None:
            try:
                runs.append(_run_backend("postgresql", pg_db_url, file, copy, dirty))
            finally:
                with admin.connect() as connection:
                    connection.execute(text(
                        f'DROP DATABASE IF EXISTS "{make_url(pg_db_url).database}" WITH (FORCE)'))
                admin.dispose()

    sqlite_run = runs[0]
    results = {
        "benchmark": "lab.ingest.ingest_file: read + validate + store, electricity (电费信息)",
        "machine": machine,
        "params": {"enterprises": args.enterprises, "seed": args.seed,
                   "rows": entry.rows, "dirty_rows": len(entry.dirty),
                   "file_mib": file_mib,
                   "columns": 23, "format": "CSV, UTF-8",
                   "sqlite_settings": "WAL, synchronous=NORMAL, page_size=16384",
                   "postgresql_settings": "server defaults (initdb of .ci/start-postgres.sh)"},
        "units": "rows_per_s = file rows / wall seconds of one ingest_file call; rows_per_cpu_s "
                 "= the same per CPU-second of this process (threads included), which other "
                 "jobs' load on a shared machine does not inflate",
        "goal_sqlite_rows_per_s": GOAL_SQLITE_ROWS_PER_S,
        "sqlite_meets_goal": sqlite_run["rows_per_s"] >= GOAL_SQLITE_ROWS_PER_S,
        "runs": runs,
    }
    if len(runs) == 2:
        results["ratio_postgresql_over_sqlite_rows_per_s"] = round(
            runs[1]["rows_per_s"] / sqlite_run["rows_per_s"], 3)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
