"""Loading one party's table from its CSV file, inside that party's domain.

:func:`load_party_table` turns a bank or platform CSV into ids, a float64
feature matrix and (for the bank) 0/1 labels, and refuses files it cannot
trust with a :class:`lab.errors.DataError` that names the file, the row and
column where it matters, and the fix.

Two kinds of problems are told apart:

- **file problems** — a missing column, a non-numeric value, a label that is
  not 0/1, a column that is all missing or constant. They stop the run:
  guessing would train a model on something else than intended.
- **row problems** — a missing id or a missing feature/label value. The row is
  excluded and recorded in :attr:`PartyTable.quarantined` (row number and
  column, never the values), so the caller can write it to the party's
  quarantine file and report the count. Nothing is dropped silently.

Ids are returned as written (stripped of surrounding spaces). Checking their
format and finding repeats, after normalisation per ``id_kind``, is the
alignment step's job (it quarantines those rows too), not this loader's.

Row numbers are as a spreadsheet shows them: the header is row 1, the first
data row is row 2 (a quoted value spanning several lines would shift them).
Messages quote at most the one offending cell, never an id or a whole row:
these files describe real people and firms.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lab.errors import DataError

__all__ = ["MISSING_TOKENS", "PartyTable", "QuarantinedRow", "load_party_table"]

#: Cell texts (compared lower-case, after stripping spaces) that mean "no value".
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
#: How many column names an error message lists before cutting off.
_MAX_LISTED_COLUMNS = 30
#: First data row's number in the file (the header is row 1).
_FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class QuarantinedRow:
    """A row excluded from the table, and why (no values, only where).

    Attributes
    ----------
    row : int
        Row number in the file, the header being row 1.
    column : str or None
        The first column with the problem (None for a blank line).
    reason : str
        E.g. ``"missing id"``, ``"missing value"``, ``"missing values in 3
        columns: x1, x4, y"``, ``"blank line"``.
    """

    row: int
    column: str | None
    reason: str


@dataclass
class PartyTable:
    """One party's usable rows.

    Attributes
    ----------
    path : Path
        The CSV file.
    ids : list of str
        Row ids as written in the file (stripped of surrounding spaces, leading
        zeros kept), in file order.
    X : numpy.ndarray of shape (n_rows, n_features), float64
        Feature values, columns in ``feature_names`` order.
    feature_names : list of str
        The features requested, in that order.
    y : numpy.ndarray of shape (n_rows,), int64, or None
        0/1 labels (1 = default) when a label column was requested.
    quarantined : list of QuarantinedRow
        Rows excluded because of missing values, in file order.
    """

    path: Path
    ids: list[str]
    X: np.ndarray
    feature_names: list[str]
    y: np.ndarray | None
    quarantined: list[QuarantinedRow] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        """Number of usable rows."""
        return len(self.ids)


def _listing(names: Sequence[str]) -> str:
    """Comma-separated column names, cut off after a readable number."""
    shown = ", ".join(names[:_MAX_LISTED_COLUMNS])
    more = len(names) - _MAX_LISTED_COLUMNS
    return shown + (f", … ({more} more)" if more > 0 else "")


def _read_header(path: Path, section: str) -> list[str]:
    """Read and check the header line; raise DataError for unreadable files."""
    if not path.exists():
        raise DataError(
            path,
            problem="the file does not exist",
            remedy=(
                f"check data in the experiment's [{section}] section; a relative path is read "
                "from the TOML file's folder"
            ),
        )
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise DataError(
            path,
            problem=f"the file is not UTF-8 text (byte {exc.start} cannot be decoded)",
            remedy="export the table as a UTF-8 CSV file",
        ) from exc
    except OSError as exc:
        raise DataError(
            path,
            problem=f"the file cannot be read ({exc.strerror or type(exc).__name__})",
            remedy="check that it is a file and that this user may read it",
        ) from exc
    if not header or all(not name.strip() for name in header):
        raise DataError(
            path,
            row=1,
            problem="the file is empty or has no header line",
            remedy="write the column names on the first line, e.g. id,y,x0,x1",
        )
    names = [name.strip() for name in header]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                path,
                row=1,
                column=name,
                problem="this column name appears more than once in the header",
                remedy="give every column a distinct name",
            )
        seen.add(name)
    return names


def _check_columns(
    path: Path,
    header: list[str],
    section: str,
    id_column: str,
    features: Sequence[str],
    label_column: str | None,
) -> None:
    """Every requested column must be in the header; say which are there if not."""
    present = _listing(header)
    if id_column not in header:
        raise DataError(
            path,
            column=id_column,
            problem=f"the id column is not in the file (mismatched id column name); "
            f"columns present: {present}",
            remedy=f"set id_column in the experiment's [{section}] section to one of: {present}",
        )
    if label_column is not None and label_column not in header:
        raise DataError(
            path,
            column=label_column,
            problem="the label column is missing",
            remedy=f"set label_column in the experiment's [{section}] section to one of: {present}",
        )
    absent = [name for name in features if name not in header]
    if absent:
        others = f" (also absent: {', '.join(absent[1:])})" if len(absent) > 1 else ""
        raise DataError(
            path,
            column=absent[0],
            problem=f"a feature listed in the experiment is not in the file{others}",
            remedy=f"fix features in the experiment's [{section}] section; columns present: "
            f"{present}",
        )
    for name in features:
        if name in (id_column, label_column):
            raise DataError(
                path,
                column=name,
                problem="the id or label column is listed as a feature",
                remedy=f"remove {name!r} from features in the experiment's [{section}] section",
            )


def _read_cells(path: Path, header: list[str]) -> pd.DataFrame:
    """All cells as text, so ids keep leading zeros and bad values can be reported."""
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            path,
            problem="the file has no rows",
            remedy="export the table with its header and rows",
        ) from exc
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "parse error"
        raise DataError(
            path,
            problem=f"the file is not a well-formed CSV ({detail})",
            remedy="make every row have as many comma-separated fields as the header; quote "
            "values that contain commas",
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            path,
            problem=f"the file is not UTF-8 text (byte {exc.start} of a block cannot be decoded)",
            remedy="export the table as a UTF-8 CSV file",
        ) from exc
    except OSError as exc:
        raise DataError(
            path,
            problem=f"the file cannot be read ({exc.strerror or type(exc).__name__})",
            remedy="check that it is a file and that this user may read it",
        ) from exc
    frame.columns = header
    return frame


def _text(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column's cells as stripped Python strings (a short row's gaps become "")."""
    series = frame[column].fillna("").astype(str).str.strip()
    return series.to_numpy(dtype=object)


def _missing(cells: np.ndarray) -> np.ndarray:
    """Boolean mask of cells that mean "no value"."""
    lowered = pd.Series(cells, dtype=object).str.lower()
    return lowered.isin(MISSING_TOKENS).to_numpy(dtype=bool)


def _numbers(
    path: Path, column: str, cells: np.ndarray, missing: np.ndarray, remedy: str
) -> np.ndarray:
    """Parse a column to float64 (NaN where missing); the first non-number is an error."""
    values = pd.to_numeric(pd.Series(np.where(missing, "nan", cells)), errors="coerce")
    parsed = values.to_numpy(dtype=np.float64)
    bad = ~missing & ~np.isfinite(parsed)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            path,
            row=first + _FIRST_DATA_ROW,
            column=column,
            problem=f"value {cells[first]!r} is not a finite number"
            + (f" ({int(bad.sum()) - 1} more such cells in this column)" if bad.sum() > 1 else ""),
            remedy=remedy,
        )
    return parsed


def load_party_table(
    path: str | Path,
    *,
    id_column: str,
    features: Sequence[str],
    label_column: str | None = None,
    section: str | None = None,
) -> PartyTable:
    """Load one party's CSV into ids, features and (optionally) labels.

    Parameters
    ----------
    path : str or Path
        The party's CSV file (UTF-8, comma-separated, header on line 1).
    id_column : str
        Column with the row ids; read as text so leading zeros survive.
    features : sequence of str
        Feature columns to load, in model order; every value must be numeric.
    label_column : str, optional
        The 0/1 outcome column (bank only).
    section : str, optional
        Experiment section the columns come from, for the remedy text;
        ``"bank"`` when a label column is given, ``"platform"`` otherwise.

    Returns
    -------
    PartyTable
        The usable rows and the quarantined ones.

    Raises
    ------
    DataError
        File missing or unreadable; id, label or feature column absent; a
        label not 0/1; one label class only; a non-numeric feature value; a
        column all missing or constant; no usable row left.
    """
    file = Path(path)
    names = [str(name) for name in features]
    where = section or ("bank" if label_column is not None else "platform")
    header = _read_header(file, where)
    _check_columns(file, header, where, id_column, names, label_column)
    frame = _read_cells(file, header)
    n_rows = len(frame)
    if n_rows == 0:
        raise DataError(file, problem="the file has a header but no rows", remedy="add the rows")

    ids = _text(frame, id_column)
    problems: list[tuple[str, np.ndarray]] = [(id_column, _missing(ids))]

    labels: np.ndarray | None = None
    if label_column is not None:
        cells = _text(frame, label_column)
        missing = _missing(cells)
        raw = pd.to_numeric(pd.Series(np.where(missing, "nan", cells)), errors="coerce")
        labels = raw.to_numpy(dtype=np.float64)
        bad = ~missing & ~np.isin(labels, (0.0, 1.0))
        if bad.any():
            first = int(np.argmax(bad))
            raise DataError(
                file,
                row=first + _FIRST_DATA_ROW,
                column=label_column,
                problem=f"label value {cells[first]!r} is not 0 or 1",
                remedy="encode the outcome as 1 = default, 0 = no default, or point "
                f"label_column in [{where}] at the outcome column",
            )
        problems.append((label_column, missing))

    columns: list[np.ndarray] = []
    for name in names:
        cells = _text(frame, name)
        missing = _missing(cells)
        if missing.all():
            raise DataError(
                file,
                column=name,
                problem="every value of this feature is missing",
                remedy=f"fill the column or remove {name!r} from features in [{where}]",
            )
        columns.append(
            _numbers(
                file,
                name,
                cells,
                missing,
                remedy=f"fix the value (numbers only, e.g. 1.5; leave the cell empty if "
                f"unknown) or remove {name!r} from features in [{where}]",
            )
        )
        problems.append((name, missing))

    gaps = np.column_stack([mask for _, mask in problems])
    blank = np.logical_and.reduce([_text(frame, column) == "" for column in header])
    keep = ~gaps.any(axis=1)
    quarantined = _quarantine(problems, gaps, blank, label_column)

    if not keep.any():
        raise DataError(
            file,
            problem=f"no usable rows: all {n_rows} rows have a missing id, label or feature "
            f"value (first: row {quarantined[0].row}, {quarantined[0].reason})",
            remedy="fill the missing values or check that the right columns are listed",
        )

    X = np.ascontiguousarray(np.column_stack(columns)[keep], dtype=np.float64)
    y = None
    if labels is not None and label_column is not None:
        y = labels[keep].astype(np.int64)
        if np.unique(y).size < 2:
            raise DataError(
                file,
                column=label_column,
                problem=f"every usable row has label {int(y[0])}; a credit model needs both "
                "defaults (1) and non-defaults (0)",
                remedy=f"check that label_column in [{where}] is the outcome column and that "
                "the file holds both outcomes",
            )
    for index, name in enumerate(names):
        column = X[:, index]
        if column.size and column.max() == column.min():
            raise DataError(
                file,
                column=name,
                problem="this feature has the same value on every usable row, so it carries no "
                "information and cannot be standardised",
                remedy=f"remove {name!r} from features in [{where}]",
            )
    return PartyTable(
        path=file,
        ids=[str(value) for value in ids[keep]],
        X=X,
        feature_names=names,
        y=y,
        quarantined=quarantined,
    )


def _quarantine(
    problems: list[tuple[str, np.ndarray]],
    gaps: np.ndarray,
    blank: np.ndarray,
    label_column: str | None,
) -> list[QuarantinedRow]:
    """One :class:`QuarantinedRow` per excluded row, naming the columns, not the values."""
    rows: list[QuarantinedRow] = []
    for index in np.flatnonzero(gaps.any(axis=1) | blank):
        number = int(index) + _FIRST_DATA_ROW
        if blank[index]:
            rows.append(QuarantinedRow(row=number, column=None, reason="blank line"))
            continue
        columns = [name for (name, _), hit in zip(problems, gaps[index], strict=True) if hit]
        if columns[0] == problems[0][0]:
            reason = "missing id"
        elif len(columns) == 1:
            reason = "missing label" if columns[0] == label_column else "missing value"
        else:
            reason = f"missing values in {len(columns)} columns: {', '.join(columns)}"
        rows.append(QuarantinedRow(row=number, column=columns[0], reason=reason))
    return rows
