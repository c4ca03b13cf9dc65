"""The lab's exception hierarchy (DESIGN §8).

Every error a user can fix says what was wrong, where (file, row, column or
key) and what to do, in one line a risk analyst can act on. Messages never
quote a data row: at most the one offending cell, so an error log does not
become a copy of personal data.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CreditLabError", "DataError", "ExperimentError"]


class CreditLabError(Exception):
    """Base class of every error the lab raises on purpose."""


class DataError(CreditLabError):
    """A party's data file cannot be used as it is.

    Parameters
    ----------
    file : str or Path
        The data file.
    problem : str
        What is wrong, without a trailing period.
    remedy : str
        What the user should do.
    row : int, optional
        1-based row number in the file, the header being row 1.
    column : str, optional
        The column concerned.

    Notes
    -----
    The message reads ``"<file>, row <row>, column '<column>': <problem>.
    Remedy: <remedy>"``, leaving out the parts that are not known, e.g.
    ``"data/x.csv, column 'y': the label column is missing. Remedy: set
    label_column in the experiment's [bank] section to one of: id, x0, …"``.
    """

    def __init__(
        self,
        file: str | Path,
        *,
        problem: str,
        remedy: str,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file)
        self.row = row
        self.column = column
        self.problem = problem
        self.remedy = remedy
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {problem}. Remedy: {remedy}")


class ExperimentError(CreditLabError):
    """An experiment TOML file is missing, malformed or holds a bad value.

    Parameters
    ----------
    file : str or Path
        The TOML file.
    problem : str
        What is wrong, without a trailing period.
    remedy : str
        What the user should do.
    key : str, optional
        Dotted key, e.g. ``"train.learning_rate"``.
    """

    def __init__(
        self, file: str | Path, *, problem: str, remedy: str, key: str | None = None
    ) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        self.remedy = remedy
        where = self.file if key is None else f"{self.file}, key {key!r}"
        super().__init__(f"{where}: {problem}. Remedy: {remedy}")
