"""Loading party tables: every refusal names file, column/row and the remedy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.datasets import QuarantinedRow, load_party_table
from lab.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def _csv(tmp_path: Path, text: str, name: str = "bank.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_bank(path: Path, features: list[str] | None = None, label: str | None = "y"):
    return load_party_table(
        path, id_column="id", features=features or ["a", "b"], label_column=label
    )


GOOD = "id,y,a,b\n001,1,0.5,2\n002,0,1.5,3\n003,0,2.5,1\n004,1,3.5,0\n"


def test_loads_real_default_credit_tables() -> None:
    bank = load_party_table(
        ROOT / "data/default_credit/bank.csv",
        id_column="id",
        features=[f"x{i}" for i in range(13)],
        label_column="y",
    )
    platform = load_party_table(
        ROOT / "data/default_credit/platform.csv",
        id_column="id",
        features=[f"x{i}" for i in range(10)],
    )
    assert bank.X.shape == (30000, 13) and platform.X.shape == (30000, 10)
    assert bank.X.dtype == np.float64 and bank.X.flags.c_contiguous
    assert bank.y is not None and int(bank.y.sum()) == 6636  # 22.12 % defaults
    assert platform.y is None
    assert bank.ids[:2] == ["25115", "2346"] and bank.ids == platform.ids
    assert bank.quarantined == [] and platform.quarantined == []
    assert bank.X[0, 0] == pytest.approx(-1.486041)


def test_ids_are_text_with_leading_zeros(tmp_path: Path) -> None:
    table = _load_bank(_csv(tmp_path, GOOD))
    assert table.ids == ["001", "002", "003", "004"]
    np.testing.assert_array_equal(table.y, [1, 0, 0, 1])
    np.testing.assert_allclose(table.X[:, 0], [0.5, 1.5, 2.5, 3.5])


def test_rows_with_missing_values_are_quarantined_not_dropped(tmp_path: Path) -> None:
    text = (
        "id,y,a,b\n"
        "001,1,0.5,2\n"  # row 2: kept
        "002,0,,3\n"  # row 3: missing a
        ",1,1,1\n"  # row 4: missing id
        "\n"  # row 5: blank line
        "005,NA,2.5,1\n"  # row 6: missing label
        "006,0,null,n/a\n"  # row 7: two missing features
        "007,0,3.5,0\n"  # row 8: kept
        "008,1,4.5,5\n"  # row 9: kept
    )
    table = _load_bank(_csv(tmp_path, text))
    assert table.ids == ["001", "007", "008"]
    assert table.X.shape == (3, 2)
    assert table.quarantined == [
        QuarantinedRow(row=3, column="a", reason="missing value"),
        QuarantinedRow(row=4, column="id", reason="missing id"),
        QuarantinedRow(row=5, column=None, reason="blank line"),
        QuarantinedRow(row=6, column="y", reason="missing label"),
        QuarantinedRow(row=7, column="a", reason="missing values in 2 columns: a, b"),
    ]


def _error(path: Path, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_party_table(path, **{"id_column": "id", "features": ["a", "b"], **kwargs})
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    error = _error(tmp_path / "nope.csv", label_column="y")
    assert "nope.csv" in str(error) and "does not exist" in str(error)
    assert "[bank]" in error.remedy


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,y,a,b\n1,1,caf\xe9,2\n".encode("latin-1"))
    error = _error(path, label_column="y")
    assert "latin1.csv" in str(error) and "not UTF-8 text" in str(error)
    directory = tmp_path / "folder.csv"
    directory.mkdir()
    error = _error(directory)
    assert "cannot be read" in str(error) and "Remedy:" in str(error)


def test_mismatched_id_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD.replace("id,", "customer_id,", 1))
    error = _error(path, label_column="y")
    message = str(error)
    assert "bank.csv" in message and "column 'id'" in message
    assert "mismatched id column name" in message
    assert "customer_id, y, a, b" in message
    assert "set id_column in the experiment's [bank] section" in error.remedy


def test_missing_label_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD.replace(",y,", ",outcome,", 1))
    error = _error(path, label_column="y")
    assert str(error).startswith(f"{path}, column 'y': the label column is missing. Remedy: ")
    assert "set label_column in the experiment's [bank] section to one of: id, outcome" in (
        str(error)
    )


def test_label_not_zero_or_one(tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD.replace("003,0,", "003,2,"))
    error = _error(path, label_column="y")
    assert (error.row, error.column) == (4, "y")
    assert "label value '2' is not 0 or 1" in str(error)
    assert "003" not in str(error)  # the row's id is not echoed
    assert "1 = default, 0 = no default" in error.remedy


def test_one_class_label(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,y,a,b\n1,0,1,2\n2,0,2,3\n3,0,3,1\n")
    error = _error(path, label_column="y")
    assert error.column == "y" and "every usable row has label 0" in str(error)
    assert "label_column" in error.remedy


def test_feature_absent(tmp_path: Path) -> None:
    path = _csv(tmp_path, GOOD)
    error = _error(path, label_column="y", features=["a", "c"])
    assert error.column == "c" and "not in the file" in str(error)
    assert "fix features in the experiment's [bank] section" in error.remedy
    assert "id, y, a, b" in error.remedy


def test_non_numeric_feature_value(tmp_path: Path) -> None:
    text = "id,y,a,b\n9001,1,0.5,2\n9002,0,1.5,3\n9003,1,abc,1\n9004,0,2.5,xyz\n"
    error = _error(_csv(tmp_path, text), label_column="y")
    assert (error.row, error.column) == (4, "a")
    assert "value 'abc' is not a finite number" in str(error)
    assert "9003" not in str(error) and "xyz" not in str(error)
    assert "remove 'a' from features in [bank]" in error.remedy


def test_all_missing_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,a,b\n1,,2\n2,NA,3\n3,,4\n", name="platform.csv")
    error = _error(path)
    assert "platform.csv" in str(error) and error.column == "a"
    assert "every value of this feature is missing" in str(error)
    assert "remove 'a' from features in [platform]" in error.remedy


def test_constant_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,a,b\n1,7,2\n2,7,3\n3,7,4\n", name="platform.csv")
    error = _error(path)
    assert error.column == "a" and "same value on every usable row" in str(error)
    assert "remove 'a' from features in [platform]" in error.remedy
