"""Alignment inside the job, on enterprise ids (USCCs) written the ways providers write them."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest

from crypto.identifiers import uscc_check_char
from federation.driver import Coordinator
from federation.transport import InProcessTransport, PartyFailed
from lab.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]


def uscc(i: int) -> str:
    first17 = f"9112010{i:010d}"
    return first17 + uscc_check_char(first17)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def dirty(code: str, i: int) -> str:
    """The same id as a provider might deliver it: spaces, lower case, full width, ZWSP."""
    forms = [f"  {code} ", code.lower(), fullwidth(code), code[:5] + "\u200b" + code[5:], code]
    return forms[i % len(forms)]


def _experiment(tmp_path: Path, bank: pd.DataFrame, platform: pd.DataFrame) -> Path:
    bank.to_csv(tmp_path / "bank.csv", index=False)
    platform.to_csv(tmp_path / "platform.csv", index=False)
    text = (ROOT / "examples" / "breast.toml").read_text()
    text = text.replace("../data/breast/", "").replace('id_kind = "opaque"', 'id_kind = "uscc"')
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


@pytest.fixture()
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    bank = pd.read_csv(ROOT / "data" / "breast" / "bank.csv", dtype={"id": str})
    platform = pd.read_csv(ROOT / "data" / "breast" / "platform.csv", dtype={"id": str})
    codes = {old: uscc(n) for n, old in enumerate(bank["id"])}
    bank["id"] = bank["id"].map(codes)
    platform["id"] = [dirty(codes[old], n) for n, old in enumerate(platform["id"])]
    return bank, platform


def test_dirty_ids_align_invalid_reported_duplicates_quarantined(tmp_path, tables) -> None:
    bank, platform = tables
    platform.loc[3, "id"] = platform.loc[3, "id"].strip()[:-1] + (
        "0" if not platform.loc[3, "id"].strip().endswith("0") else "1")  # wrong check char
    bank = pd.concat([bank, bank.iloc[[7]]], ignore_index=True)  # a repeated loan-book row
    path = _experiment(tmp_path, bank, platform)
    coordinator = Coordinator(InProcessTransport(), load_experiment(path), tmp_path / "run",
                              run_key="r")
    coordinator.setup()
    coordinator.align()
    counts = coordinator.result.counts
    assert counts["platform_ids_invalid"] == 1
    assert counts["bank_ids_duplicated"] == 1
    assert counts["rows_aligned"] == 568  # every dirty form matched; the invalid one did not
    with (tmp_path / "run" / "platform" / "quarantine.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["row"], r["column"]) for r in rows] == [("5", "id")]  # header is row 1
    assert "check" in rows[0]["reason"].lower()
    with (tmp_path / "run" / "bank" / "quarantine.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == [str(len(bank) + 1)]
    assert "duplicate id" in rows[0]["reason"] and "row 9" in rows[0]["reason"]
    assert uscc(7) not in rows[0]["reason"]  # ids are masked in reports


def test_no_common_ids_stops_the_job_with_counts(tmp_path, tables) -> None:
    bank, platform = tables
    platform["id"] = [uscc(10_000 + n) for n in range(len(platform))]
    path = _experiment(tmp_path, bank, platform)
    coordinator = Coordinator(InProcessTransport(), load_experiment(path), tmp_path / "run",
                              run_key="r")
    coordinator.setup()
    with pytest.raises(PartyFailed, match="569"):
        coordinator.align()


def test_wrong_id_kind_stops_at_setup_naming_file_and_remedy(tmp_path, tables) -> None:
    bank, platform = tables
    shutil.copy(ROOT / "data" / "breast" / "platform.csv", tmp_path / "raw.csv")
    platform = pd.read_csv(tmp_path / "raw.csv", dtype={"id": str})  # integer ids, kind uscc
    path = _experiment(tmp_path, bank, platform)
    coordinator = Coordinator(InProcessTransport(), load_experiment(path), tmp_path / "run",
                              run_key="r")
    with pytest.raises(PartyFailed) as info:
        coordinator.setup()
    message = str(info.value)
    assert "platform.csv" in message and "'id'" in message and "id_kind" in message
    assert "569 invalid" in message
