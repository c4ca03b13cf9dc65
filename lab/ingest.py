"""Provider ingestion: ``creditlab ingest ITEM FILE``.

One delivered file (CSV in UTF-8, UTF-8 with BOM or GBK/GB18030, or XLSX)
becomes one :class:`~lab.store.models.Batch`. The path is a straight line:

1. **read** — decode, parse, hash the bytes (:func:`read_table`);
2. **check the layout** — the headers must be the item's catalog headers,
   in any order; anything else refuses the whole batch (:class:`BatchRefused`),
   because a mis-mapped column would store wrong facts under right names;
3. **validate every cell** by its catalog :class:`~lab.catalog.Kind`
   (:func:`validate_frame`), then across fields and rows (policy dates in
   order; one row per natural key);
4. **compare with the store** — a row whose key is already stored with the
   same content is *unchanged*; with other content it becomes a new version
   that supersedes the old one; a key that credit repair withdrew is not let
   back in;
5. **store** valid rows (bulk: see :mod:`lab.store.bulk`), rejected rows in
   the quarantine with file, row, field, reason code and an actionable
   reason, all in one transaction.

Re-ingesting the same file for the same item and provider changes nothing
(the batch is found by the file's SHA-256 and reported again). Every stored
record keeps its provider, batch id and data date.

Validation rules by kind (messages tell the provider what to fix)
-----------------------------------------------------------------
* ``uscc`` — normalised as for alignment (NFKC, zero-width characters
  removed, stripped, upper case: :func:`crypto.identifiers.normalise_id`),
  then GB 32100-2015 (:mod:`crypto.identifiers`, whose ``check_ids`` words the
  reason of a rejected code); an embedded
  organisation code failing GB 11714 is a warning, not a rejection.
* ``id_number`` — a USCC or a resident id (ISO 7064 MOD 11-2 and a real
  birth date), as the row's 证件类型 says.
* ``date`` — ``YYYY-MM-DD``, ``YYYY/M/D`` or ``YYYYMMDD`` (an Excel
  ``00:00:00`` time is tolerated); a calendar date from 1900 to 2100; dates
  that describe the past must not be after the day the batch was received.
* ``period`` — ``YYYY-MM`` or ``YYYYMM``, months 01-12.
* ``amount``, ``quantity``, ``count`` — plain ASCII decimal numbers (no
  thousands separators), ≥ 0; counts whole. ``rate`` — percent ≥ -100, with
  an optional ``%``.
* ``enum``, ``bool``, ``id_type`` — one of the catalog's labels (是/否 for bool).
* ``text`` — NFKC-normalised (full-width letters, digits and brackets become
  half-width), printable, within its length.
* ``code`` — half-width printable ASCII: a full-width (全角) character in an
  account or licence number is rejected, since the provider's system would
  never match it.

Personal data: no message, log line or quarantine entry carries a full id,
account number, address or a natural person's name (see
:func:`lab.catalog.mask_value`).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sqlalchemy import column as sql_column
from sqlalchemy import func, select, update
from sqlalchemy import table as sql_table
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from crypto.identifiers import (
    USCC_ALPHABET,
    check_ids,
    mask_id,
    normalise_id,
    organisation_code_is_valid,
    resident_id_is_valid,
    uscc_is_valid,
)
from lab.catalog import (
    CATALOG,
    ID_TYPE_RESIDENT,
    ID_TYPE_USCC,
    PROVIDERS,
    CatalogField,
    Item,
    Kind,
    get_item,
    header_key,
    mask_value,
)
from lab.errors import CreditLabError
from lab.store.bulk import bulk_insert
from lab.store.engine import Store
from lab.store.models import (
    STATE_CURRENT,
    STATE_SUPERSEDED,
    STATE_WITHDRAWN,
    AuditEvent,
    Batch,
    BatchWarning,
    QuarantinedRow,
    record_model,
)

__all__ = [
    "BatchRefused",
    "FieldCheck",
    "IngestReport",
    "Problem",
    "RawTable",
    "Reason",
    "ValidatedFrame",
    "ingest_file",
    "read_table",
    "record_data_dates",
    "validate_frame",
]

logger = logging.getLogger(__name__)

#: Cell texts that mean "no value" (after stripping spaces).
MISSING = frozenset({"", "NULL", "null", "\\N"})
_FIRST_DATA_ROW = 2  # the header is row 1, as a spreadsheet shows it
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_SMALL_BATCH = 20_000  # up to this many keys, look them up with IN (…); beyond, a temp table
_KEYS_TABLE = "creditlab_batch_keys"


class Reason(StrEnum):
    """Stable reason codes of quarantined cells and rows (the message says more)."""

    MISSING_REQUIRED = "missing_required"
    USCC_LENGTH = "uscc_length"
    USCC_CHARACTER = "uscc_character"
    USCC_CHECK = "uscc_check_character"
    RESIDENT_ID_LENGTH = "resident_id_length"
    RESIDENT_ID_CHARACTER = "resident_id_character"
    RESIDENT_ID_BIRTH_DATE = "resident_id_birth_date"
    RESIDENT_ID_CHECK = "resident_id_check_character"
    NOT_A_DATE = "not_a_date"
    IMPOSSIBLE_DATE = "impossible_date"
    DATE_AFTER_RECEIPT = "date_after_receipt"
    NOT_A_PERIOD = "not_a_period"
    IMPOSSIBLE_PERIOD = "impossible_period"
    NOT_A_NUMBER = "not_a_number"
    NEGATIVE = "negative_value"
    NOT_WHOLE = "not_a_whole_number"
    OUT_OF_RANGE = "out_of_range"
    NOT_IN_CHOICES = "not_in_choices"
    FULL_WIDTH = "full_width_characters"
    NOT_PRINTABLE = "not_printable"
    TOO_LONG = "too_long"
    DATE_ORDER = "date_order"
    DUPLICATE_KEY = "duplicate_key"
    SHORT_ROW = "short_row"
    WITHDRAWN = "withdrawn_by_repair"
    CORRECTED = "differs_from_correction"
    # warnings (the row is stored)
    ORGANISATION_CODE = "organisation_code_check"


@dataclass(frozen=True)
class Problem:
    """One reason a cell or row was rejected (or warned about)."""

    code: Reason
    message: str  # "<what is wrong>. Remedy: <what to do>", no personal values


class BatchRefused(CreditLabError):
    """A delivered file is refused whole (wrong headers, encoding, format); nothing is stored."""

    def __init__(self, file: str | Path, problem: str, remedy: str) -> None:
        self.file = str(file)
        self.problem = problem
        self.remedy = remedy
        super().__init__(f"{self.file}: batch refused: {problem}. Remedy: {remedy}")


# --------------------------------------------------------------------------- reading


@dataclass
class RawTable:
    """A delivered file as text cells, before validation."""

    path: Path
    file_format: str  # "csv" or "xlsx"
    encoding: str | None  # "utf-8", "utf-8-sig", "gb18030"; None for XLSX
    sha256: str
    headers: list[str]
    frame: pd.DataFrame  # one column per header, cells as stripped text
    short_rows: dict[int, int] = field(default_factory=dict)
    """Frame row → how many fields the file gave it, for rows shorter than the header
    (padded with empty cells here; quarantined by :func:`ingest_file`)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _bom(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def _read_csv_arrow(path: Path, encoding: str = "utf-8") -> tuple[list[str], pd.DataFrame] | None:
    """The fast path: pyarrow's multi-threaded parser, every column as text.

    Returns None when the file is not valid text in ``encoding`` or not
    rectangular (a blank line, a short or long row): :func:`_read_csv` then
    reads it with every row's width, or refuses it.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    text_encoding = "utf-8-sig" if encoding.startswith("utf-8") else encoding
    with path.open("r", encoding=text_encoding, newline="", errors="replace") as handle:
        first = handle.readline()
    width = len(next(csv.reader([first]), []))
    if width == 0:
        return None
    names = [f"c{i}" for i in range(width)]
    arrow_encoding = "utf8" if encoding.startswith("utf-8") else encoding
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1,
                                           encoding=arrow_encoding),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    headers = [cell.strip() for cell in next(csv.reader([first.lstrip("\ufeff")]))]
    frame = table.to_pandas()
    frame.columns = range(width)
    return headers, frame


def _read_csv(path: Path, encoding: str) -> tuple[list[str], pd.DataFrame, dict[int, int]]:
    """The general path (Python's csv module): any encoding, every row's width seen.

    Blank lines are kept as (empty) rows, so they are quarantined, not lost.
    A row with more fields than the header refuses the batch (which field is
    which cannot be known); a shorter row is padded here and quarantined by
    :func:`ingest_file` with its width (the third return value).
    """
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise BatchRefused(path, "the file is neither UTF-8 nor GBK/GB18030 text",
                           "export the table as CSV in UTF-8") from exc
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    start = 1  # the line where the record being read begins
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise BatchRefused(path, "the file is empty", "export the table with its header row")
        width = len(header)
        rows: list[list[str]] = []
        short: dict[int, int] = {}
        start = reader.line_num + 1
        for row in reader:
            if len(row) > width:
                raise BatchRefused(
                    path, f"line {reader.line_num} has {len(row)} fields but the header "
                    f"{width}", "check that the header names every column, and quote "
                    "values that contain commas")
            if 0 < len(row) < width:
                short[len(rows)] = len(row)
            rows.append(row + [""] * (width - len(row)))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise BatchRefused(path, f"the record that begins on line {start} is not well-formed "
                           f"CSV ({exc})", "check its quotes: a value in quotes must end with a "
                           "quote, and a quote inside a value is written twice (\"\")") from exc
    headers = [cell.strip() for cell in header]
    frame = pd.DataFrame(rows, columns=range(width), dtype=str) if rows else \
        pd.DataFrame({i: pd.Series(dtype=str) for i in range(width)})
    return headers, frame, short


def _read_any_csv(path: Path) -> tuple[str, list[str], pd.DataFrame, dict[int, int]]:
    """Decide the encoding and read: UTF-8 (with or without BOM) or GB18030 (⊇ GBK).

    A Chinese GBK file is practically never valid UTF-8, so UTF-8 is tried
    first, strictly, on the whole file. UTF-16 (Excel's "Unicode text") is
    refused with its own message.
    """
    head = _bom(path)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise BatchRefused(path, "the file is UTF-16 text",
                           "export the table as CSV in UTF-8 (or GBK)")
    utf8 = "utf-8-sig" if head[:3] == b"\xef\xbb\xbf" else "utf-8"
    fast = _read_csv_arrow(path)
    if fast is not None:
        return utf8, *fast, {}
    try:
        with path.open("r", encoding="utf-8", newline="") as handle:
            while handle.read(1 << 22):
                pass
        encoding = utf8
    except UnicodeDecodeError:
        encoding = "gb18030"
    if encoding == "gb18030":
        fast = _read_csv_arrow(path, encoding)
        if fast is not None:
            return encoding, *fast, {}
    headers, frame, short = _read_csv(path, encoding)
    return encoding, headers, frame, short


def _excel_text(value: object) -> str:
    """One XLSX cell as the text a CSV export would have held."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_xlsx(path: Path) -> tuple[list[str], pd.DataFrame]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise BatchRefused(path, f"the file is not a readable XLSX workbook ({type(exc).__name__})",
                           "save the table as .xlsx (Excel 2007 or later) or export it as CSV"
                           ) from exc
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            raise BatchRefused(path, "the first sheet is empty",
                               "put the header on row 1 of the first sheet")
        headers = [_excel_text(value) for value in header_row]
        width = len(headers)
        while width and not headers[width - 1]:
            width -= 1  # trailing empty header cells are formatting, not columns
        headers = headers[:width]
        data = [[_excel_text(value) for value in row[:width]] for row in rows]
    finally:
        workbook.close()
    data = [row + [""] * (width - len(row)) for row in data]
    while data and not any(data[-1]):
        data.pop()  # Excel keeps formatted empty rows at the end
    frame = pd.DataFrame(data, columns=range(width), dtype=str)
    return headers, frame


def read_table(path: str | Path) -> RawTable:
    """Read a delivered CSV or XLSX file as text cells (stripped of outer spaces).

    Raises
    ------
    BatchRefused
        Missing or unreadable file, unknown format, undecodable text, a
        malformed CSV or an empty sheet.
    """
    file = Path(path)
    if not file.is_file():
        what = "is a folder, not a file" if file.is_dir() else "there is no such file"
        raise BatchRefused(file, what, "give the path of the delivered CSV or XLSX file")
    suffix = file.suffix.lower()
    short: dict[int, int] = {}
    if suffix in (".xlsx", ".xlsm"):
        file_format, encoding = "xlsx", None
        headers, frame = _read_xlsx(file)
    elif suffix in (".csv", ".txt"):
        file_format = "csv"
        encoding, headers, frame, short = _read_any_csv(file)
    else:
        raise BatchRefused(file, f"files ending in {suffix or '(nothing)'!r} are not read",
                           "deliver a .csv (UTF-8 or GBK) or .xlsx file")
    # A trailing blank line is an artefact of the export, not a row.
    while len(frame) and (frame.iloc[-1] == "").all():
        frame = frame.iloc[:-1]
    for column in frame.columns:
        frame[column] = frame[column].astype("str").str.strip()
    return RawTable(path=file, file_format=file_format, encoding=encoding,
                    sha256=_sha256(file), headers=headers, frame=frame,
                    short_rows={row: n for row, n in short.items() if row < len(frame)})


def _closest_item(keys: set[str]) -> Item | None:
    """The catalog item whose headers overlap the file's most (for a hint), if any does."""
    best, overlap = None, 0
    for item in CATALOG:
        common = len(keys & {header_key(h) for h in item.headers})
        if common > overlap:
            best, overlap = item, common
    return best if overlap >= 3 else None


def _map_headers(raw: RawTable, item: Item) -> pd.DataFrame:
    """Rename the file's columns to field names, or refuse the batch with the exact mismatch."""
    expected = {header_key(f.header): f for f in item.fields}
    keys = [header_key(h) for h in raw.headers]
    seen = set(keys)
    twice = sorted({h for h, k in zip(raw.headers, keys, strict=True) if keys.count(k) > 1})
    if twice:
        raise BatchRefused(raw.path, f"columns appear twice: {', '.join(twice)}",
                           "deliver each catalog column once")
    missing = [f.header for k, f in expected.items() if k not in seen]
    unknown = [h for h, k in zip(raw.headers, keys, strict=True) if k not in expected]
    if missing or unknown:
        read_as = f" (read as {raw.encoding})" if raw.encoding else ""
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            shown = ", ".join(repr(h[:30]) for h in unknown[:8])
            parts.append(f"columns not in the catalog: {shown}")
        remedy = (f"deliver {item.name_zh} with exactly the catalog headers "
                  f"({', '.join(item.headers)}); `creditlab catalog {item.code}` lists them")
        other = _closest_item(set(keys))
        if other is not None and other is not item:
            remedy = (f"this looks like {other.name_zh} ({other.code}): ingest it as "
                      f"`creditlab ingest {other.code} FILE`, or " + remedy)
        elif unknown and raw.encoding == "gb18030":
            remedy += "; if the file is in another encoding, export it as UTF-8"
        raise BatchRefused(raw.path, f"the headers do not match {item.name_zh}{read_as}: "
                           + "; ".join(parts), remedy)
    position = {k: i for i, k in enumerate(keys)}
    return pd.DataFrame({f.name: raw.frame[position[header_key(f.header)]] for f in item.fields})


def _short_row_problems(raw: RawTable, item: Item) -> list[tuple[list[int], str, Problem]]:
    """Rows with fewer fields than the header, named by the first catalog field they lack."""
    by_width: dict[int, list[int]] = {}
    for row, width in raw.short_rows.items():
        by_width.setdefault(width, []).append(row)
    keys = [header_key(h) for h in raw.headers]
    fields = sorted(item.fields, key=lambda f: keys.index(header_key(f.header)))
    problems = []
    for width, rows in sorted(by_width.items()):
        absent = next(f for f in fields if keys.index(header_key(f.header)) >= width)
        problems.append((rows, absent.name, Problem(
            Reason.SHORT_ROW,
            f"the row has {width} of the header's {len(raw.headers)} fields: {absent.header} "
            "and the fields after it are absent. Remedy: deliver the row with every field, "
            "empty ones as nothing between two commas")))
    return problems


# --------------------------------------------------------------------------- cell validation


@dataclass
class FieldCheck:
    """One column after validation.

    ``values`` are ready for storage (None where missing or invalid);
    ``problem`` is -1 where the cell is fine, else an index into ``problems``;
    ``hashes`` fingerprint the normalised values (to spot unchanged records).
    """

    values: np.ndarray
    problem: np.ndarray
    problems: list[Problem]
    hashes: np.ndarray
    normalised: np.ndarray | None = None
    warnings: list[tuple[np.ndarray, Problem]] = field(default_factory=list)


def _missing_problem(spec: CatalogField) -> Problem:
    return Problem(Reason.MISSING_REQUIRED,
                   f"{spec.header} is required but empty. Remedy: fill {spec.header} "
                   f"({spec.description}) and deliver the row again")


class _Problems:
    """Interning of problems, so a million bad cells share a handful of messages."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self._index: dict[Problem, int] = {}

    def index(self, problem: Problem | None) -> int:
        if problem is None:
            return -1
        found = self._index.get(problem)
        if found is None:
            found = self._index[problem] = len(self.items)
            self.items.append(problem)
        return found


def _hash_values(values: Sequence[object]) -> np.ndarray:
    """A 64-bit fingerprint per value, equal for equal normalised values."""
    return pd.util.hash_array(np.array([repr(v) for v in values], dtype=object))


UniqueCheck = Callable[[str], tuple[object, Problem | None]]


def _per_unique(cells: pd.Series, spec: CatalogField, check: UniqueCheck) -> FieldCheck:
    """Validate each distinct cell text once and map the results back to the rows."""
    codes, uniques = pd.factorize(cells)
    problems = _Problems()
    values: list[object] = []
    found = np.full(len(uniques), -1, dtype=np.int32)
    missing = _missing_problem(spec) if spec.required else None
    for position, raw in enumerate(uniques.tolist()):
        if raw in MISSING:
            values.append(None)
            found[position] = problems.index(missing)
            continue
        value, problem = check(raw)
        values.append(None if problem else value)
        found[position] = problems.index(problem)
    return FieldCheck(values=np.array(values, dtype=object)[codes], problem=found[codes],
                      problems=problems.items, hashes=_hash_values(values)[codes])


def _text_check(spec: CatalogField) -> UniqueCheck:
    def check(raw: str) -> tuple[object, Problem | None]:
        text = unicodedata.normalize("NFKC", raw).translate(_ZERO_WIDTH).strip()
        if not text.isprintable():
            return None, Problem(Reason.NOT_PRINTABLE,
                                 f"{spec.header} contains control characters (line breaks, "
                                 "tabs). Remedy: remove them from the cell")
        if len(text) > spec.max_length:
            return None, Problem(Reason.TOO_LONG,
                                 f"{spec.header} is longer than {spec.max_length} characters. "
                                 "Remedy: shorten it or put details in 备注")
        return text, None
    return check


def _code_check(spec: CatalogField) -> UniqueCheck:
    def check(raw: str) -> tuple[object, Problem | None]:
        if not raw.isascii():
            if unicodedata.normalize("NFKC", raw).isascii():
                return None, Problem(Reason.FULL_WIDTH,
                                     f"{spec.header} contains full-width (全角) characters. "
                                     "Remedy: write codes in half-width (半角) characters, as "
                                     "the provider's system holds them")
            return None, Problem(Reason.NOT_PRINTABLE,
                                 f"{spec.header} contains characters a code cannot have. "
                                 "Remedy: use the code exactly as the provider's system holds it")
        if not raw.isprintable():
            return None, Problem(Reason.NOT_PRINTABLE,
                                 f"{spec.header} contains control characters. Remedy: remove them")
        if len(raw) > spec.max_length:
            return None, Problem(Reason.TOO_LONG,
                                 f"{spec.header} is longer than {spec.max_length} characters. "
                                 "Remedy: check the column mapping of the export")
        return raw, None
    return check


def _codes(cells: pd.Series, spec: CatalogField) -> FieldCheck:
    """Codes are nearly unique per row (数据编码), so the common case is checked vectorised.

    Cells that are printable ASCII within the length pass at once; only the
    others go through :func:`_code_check` for their exact reason.
    """
    missing = cells.isin(MISSING).to_numpy(dtype=bool)
    plain = cells.str.fullmatch(r"[\x20-\x7e]*").to_numpy(dtype=bool)
    short = (cells.str.len() <= spec.max_length).to_numpy(dtype=bool)
    problems = _Problems()
    problem = np.full(len(cells), -1, dtype=np.int32)
    if spec.required and missing.any():
        problem[missing] = problems.index(_missing_problem(spec))
    check = _code_check(spec)
    for index in np.flatnonzero(~missing & ~(plain & short)).tolist():
        problem[index] = problems.index(check(str(cells.iat[index]))[1])
    ok = ~missing & (problem < 0)
    values = np.where(ok, cells.to_numpy(dtype=object), None)
    hashes = pd.util.hash_array(np.where(ok, values, "\x00"))
    return FieldCheck(values=values, problem=problem, problems=problems.items, hashes=hashes)


def _choice_check(spec: CatalogField) -> UniqueCheck:
    allowed = "/".join(spec.choices)

    def check(raw: str) -> tuple[object, Problem | None]:
        text = unicodedata.normalize("NFKC", raw).strip()
        if text in spec.choices:
            return (text == "是") if spec.kind is Kind.BOOL else text, None
        return None, Problem(Reason.NOT_IN_CHOICES,
                             f"{spec.header} must be one of {allowed}. Remedy: map the "
                             "provider's label to one of these")
    return check


_DATE = re.compile(r"^([0-9]{4})(?:([-/])([0-9]{1,2})\2([0-9]{1,2})|([0-9]{2})([0-9]{2}))"
                   r"(?:[ T]00:00(?::00)?)?$")
_PERIOD = re.compile(r"^([0-9]{4})[-/]?([0-9]{2})$")


def _date_check(spec: CatalogField, received: dt.date) -> UniqueCheck:
    def check(raw: str) -> tuple[object, Problem | None]:
        match = _DATE.match(raw)
        if match is None:
            return None, Problem(Reason.NOT_A_DATE,
                                 f"{spec.header} is not a date. Remedy: write it as YYYY-MM-DD")
        year = int(match[1])
        month, day = (int(match[3]), int(match[4])) if match[2] else (int(match[5]), int(match[6]))
        try:
            value = dt.date(year, month, day)
        except ValueError:
            return None, Problem(Reason.IMPOSSIBLE_DATE,
                                 f"{spec.header} is not a calendar date (e.g. 30 February or "
                                 "month 13). Remedy: correct the date at the source")
        if not 1900 <= year <= 2100:
            return None, Problem(Reason.IMPOSSIBLE_DATE,
                                 f"{spec.header} lies outside 1900-2100. Remedy: correct the "
                                 "date at the source")
        if spec.not_after_receipt and value > received:
            return None, Problem(Reason.DATE_AFTER_RECEIPT,
                                 f"{spec.header} is after the day the batch was received. "
                                 "Remedy: correct the date; it describes the past")
        return value.isoformat(), None
    return check


def _period_check(spec: CatalogField, received: dt.date) -> UniqueCheck:
    def check(raw: str) -> tuple[object, Problem | None]:
        match = _PERIOD.match(raw)
        if match is None:
            return None, Problem(Reason.NOT_A_PERIOD,
                                 f"{spec.header} is not a month. Remedy: write it as YYYY-MM")
        year, month = int(match[1]), int(match[2])
        if not (1 <= month <= 12 and 1900 <= year <= 2100):
            return None, Problem(Reason.IMPOSSIBLE_PERIOD,
                                 f"{spec.header} is not a real month (month 01-12, year "
                                 "1900-2100). Remedy: correct it at the source")
        if spec.not_after_receipt and dt.date(year, month, 1) > received:
            return None, Problem(Reason.DATE_AFTER_RECEIPT,
                                 f"{spec.header} is after the month the batch was received. "
                                 "Remedy: correct the month; it describes the past")
        return f"{year:04d}-{month:02d}", None
    return check


_PLAIN_NUMBER = r"-?[0-9]+(\.[0-9]+)?"


def _parse_floats(text: pd.Series, missing: np.ndarray) -> np.ndarray:
    """Parse plain decimal numbers to float64; NaN where missing or not such a number.

    Only ``-?digits(.digits)?`` counts: no exponents, signs other than a
    leading minus, thousands separators or full-width digits, which could
    hide a mis-mapped column. Arrow parses the common all-good column in one
    pass; anything else falls back to pandas, cell by cell.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    plain = text.str.fullmatch(_PLAIN_NUMBER).to_numpy(dtype=bool)
    usable = plain & ~missing
    if usable.all():
        return pc.cast(pa.array(text), pa.float64()).to_numpy(zero_copy_only=False)
    numbers = pd.to_numeric(text.where(usable, ""), errors="coerce").to_numpy(
        dtype=np.float64, copy=True)
    numbers[~usable] = np.nan
    return numbers


def _numbers(cells: pd.Series, spec: CatalogField) -> FieldCheck:
    """Vectorised numeric validation (a million cells in tens of milliseconds)."""
    missing = cells.isin(MISSING).to_numpy(dtype=bool)
    text = cells.str.removesuffix("%") if spec.kind is Kind.RATE else cells
    numbers = _parse_floats(text, missing)
    problems = _Problems()
    problem = np.full(len(cells), -1, dtype=np.int32)

    def flag(mask: np.ndarray, reason: Reason, message: str) -> None:
        mask = mask & (problem < 0)
        if mask.any():
            problem[mask] = problems.index(Problem(reason, message))

    if spec.required:
        flag(missing, Reason.MISSING_REQUIRED, _missing_problem(spec).message)
    finite = np.isfinite(numbers)
    flag(~missing & ~finite, Reason.NOT_A_NUMBER,
         f"{spec.header} is not a number. Remedy: write plain decimal numbers in half-width "
         "digits, without thousands separators or units (e.g. 1234.50)")
    with np.errstate(invalid="ignore"):
        if spec.kind is Kind.RATE:
            flag(finite & ((numbers < -100) | (numbers > 100_000)), Reason.OUT_OF_RANGE,
                 f"{spec.header} is outside -100%…100000%. Remedy: give the rate in percent "
                 "(e.g. -12.5 for a 12.5% fall)")
        else:
            flag(finite & (numbers < 0), Reason.NEGATIVE,
                 f"{spec.header} is negative. Remedy: amounts and quantities are ≥ 0; report "
                 "refunds or credits in 备注")
        if spec.kind is Kind.COUNT:
            flag(finite & (numbers != np.round(numbers)), Reason.NOT_WHOLE,
                 f"{spec.header} is not a whole number. Remedy: give a count (0, 1, 2, …)")
    ok = finite & (problem < 0)
    if spec.kind is Kind.COUNT:
        stored = np.where(ok, numbers, 0).astype(np.int64).astype(object)
    else:
        stored = numbers.astype(object)
    values = np.where(ok, stored, None)
    hashes = pd.util.hash_array(np.where(ok, numbers, np.nan))
    return FieldCheck(values=values, problem=problem, problems=problems.items, hashes=hashes)


def _uscc_reason(normalised: str) -> Reason:
    if len(normalised) != 18:
        return Reason.USCC_LENGTH
    if any(ch not in USCC_ALPHABET for ch in normalised):
        return Reason.USCC_CHARACTER
    return Reason.USCC_CHECK


def _resident_reason(message: str) -> Reason:
    if "birth date" in message:
        return Reason.RESIDENT_ID_BIRTH_DATE
    if "check character" in message:
        return Reason.RESIDENT_ID_CHECK
    if "length" in message:
        return Reason.RESIDENT_ID_LENGTH
    return Reason.RESIDENT_ID_CHARACTER


_ID_REMEDY = ("Remedy: correct it from the registration record (营业执照 / 身份证) and deliver the "
              "row again")


def _check_id_values(raw_values: list[str], kind: str, header: str
                     ) -> tuple[list[object], list[Problem | None], list[Problem | None]]:
    """Normalise and check distinct ids with :mod:`crypto.identifiers`.

    Valid ids are recognised with :func:`~crypto.identifiers.uscc_is_valid` /
    :func:`~crypto.identifiers.resident_id_is_valid` after
    :func:`~crypto.identifiers.normalise_id`; the invalid ones go through
    :func:`~crypto.identifiers.check_ids` for the reason in words. Returns per
    input value: the normalised id (None if invalid), the rejection problem
    and the warning problem.
    """
    is_valid = uscc_is_valid if kind == "uscc" else resident_id_is_valid
    normal: list[object] = []
    rejected: list[Problem | None] = [None] * len(raw_values)
    warned: list[Problem | None] = [None] * len(raw_values)
    invalid: list[int] = []
    for position, raw in enumerate(raw_values):
        value = normalise_id(raw)
        if is_valid(value):
            normal.append(value)
            if kind == "uscc" and not organisation_code_is_valid(value[8:17]):
                warned[position] = Problem(
                    Reason.ORGANISATION_CODE,
                    f"{header}: organisation code (positions 9-17) fails GB 11714; the USCC "
                    "itself is valid and was stored. Remedy: confirm the code with the "
                    "registration authority")
        else:
            normal.append(None)
            invalid.append(position)
    if invalid:
        report = check_ids([raw_values[p] for p in invalid], kind)  # type: ignore[arg-type]
        name = "USCC (统一社会信用代码)" if kind == "uscc" else "resident id (居民身份证号码)"
        for row, _masked, message in report.invalid:
            position = invalid[row]
            reason = (_uscc_reason(normalise_id(raw_values[position])) if kind == "uscc"
                      else _resident_reason(message))
            rejected[position] = Problem(
                reason, f"{header} is not a valid {name}: {message}. {_ID_REMEDY}")
    return normal, rejected, warned


def _ids(cells: pd.Series, spec: CatalogField, kinds: np.ndarray | None) -> FieldCheck:
    """Validate a USCC column, or an id_number column whose kind per row is ``kinds``."""
    key = cells if kinds is None else pd.Series(
        [f"{k}\x1f{c}" for k, c in zip(kinds.tolist(), cells.tolist(), strict=True)], dtype=str)
    codes, uniques = pd.factorize(key)
    texts = uniques.tolist()
    n = len(texts)
    values: list[object] = [None] * n
    found = np.full(n, -1, dtype=np.int32)
    warn: list[Problem | None] = [None] * n
    changed = np.zeros(n, dtype=bool)
    problems = _Problems()
    missing = _missing_problem(spec) if spec.required else None
    groups: dict[str, list[int]] = {}
    raws: list[str] = []
    for position, text in enumerate(texts):
        kind_label, raw = ("uscc", text) if kinds is None else text.split("\x1f", 1)
        raws.append(raw)
        if raw in MISSING:
            found[position] = problems.index(missing)
        elif kind_label in ("uscc", ID_TYPE_USCC):
            groups.setdefault("uscc", []).append(position)
        elif kind_label == ID_TYPE_RESIDENT:
            groups.setdefault("resident_id", []).append(position)
        # else: 证件类型 is missing or invalid; that cell carries the problem
    for kind, positions in groups.items():
        normal, rejected, warned = _check_id_values([raws[p] for p in positions], kind,
                                                    spec.header)
        for p, value, problem, warning in zip(positions, normal, rejected, warned, strict=True):
            values[p] = value
            found[p] = problems.index(problem)
            warn[p] = warning
            changed[p] = value is not None and value != raws[p]
    check = FieldCheck(values=np.array(values, dtype=object)[codes], problem=found[codes],
                       problems=problems.items, hashes=_hash_values(values)[codes],
                       normalised=changed[codes])
    warned_positions = [p for p in range(n) if warn[p] is not None]
    for warning in {warn[p] for p in warned_positions}:
        hit = np.zeros(n, dtype=bool)
        hit[[p for p in warned_positions if warn[p] == warning]] = True
        check.warnings.append((hit[codes], warning))  # type: ignore[arg-type]
    return check


@dataclass
class ValidatedFrame:
    """A whole delivered table after cell, cross-field and within-batch checks."""

    item: Item
    checks: dict[str, FieldCheck]
    row_ok: np.ndarray  # bool per row: no problem in any field and not a duplicate
    record_keys: np.ndarray  # object: natural key text per row ("" where a key cell is bad)
    content_hash: np.ndarray  # int64 per row
    duplicate_of: np.ndarray  # int64: index of the first row with the same key, or -1

    @property
    def n_rows(self) -> int:
        return len(self.row_ok)


def validate_frame(item: Item, frame: pd.DataFrame, *, received: dt.date,
                   row_problems: Sequence[tuple[Sequence[int], str, Problem]] = (),
                   ) -> ValidatedFrame:
    """Validate a table whose columns are ``item``'s field names (all cells text).

    The same function validates a million-row batch and a one-row correction
    (:mod:`lab.repair`), so both obey exactly the same rules. ``row_problems``
    are faults found while reading (rows, the field to name, the problem),
    applied before duplicates are sought, so a bad row never hides a good one.
    """
    checks: dict[str, FieldCheck] = {}
    for spec in item.fields:
        cells = frame[spec.name].astype(str)
        kind = spec.kind
        if kind is Kind.USCC:
            checks[spec.name] = _ids(cells, spec, None)
        elif kind is Kind.ID_NUMBER:
            id_type = checks["id_type"].values  # 证件类型 precedes 证件号码 in every item
            checks[spec.name] = _ids(cells, spec, np.where(id_type == None, "", id_type))  # noqa: E711
        elif kind in (Kind.AMOUNT, Kind.QUANTITY, Kind.COUNT, Kind.RATE):
            checks[spec.name] = _numbers(cells, spec)
        elif kind is Kind.TEXT:
            checks[spec.name] = _per_unique(cells, spec, _text_check(spec))
        elif kind is Kind.CODE:
            checks[spec.name] = _codes(cells, spec)
        elif kind in (Kind.ENUM, Kind.BOOL, Kind.ID_TYPE):
            checks[spec.name] = _per_unique(cells, spec, _choice_check(spec))
        elif kind is Kind.DATE:
            checks[spec.name] = _per_unique(cells, spec, _date_check(spec, received))
        elif kind is Kind.PERIOD:
            checks[spec.name] = _per_unique(cells, spec, _period_check(spec, received))
        else:  # pragma: no cover - every Kind is handled above
            raise ValueError(f"no validator for {kind}")
    _cross_field_checks(item, checks)
    for rows, name, problem in row_problems:
        target = checks[name]
        target.problems.append(problem)
        target.problem[np.asarray(rows, dtype=np.int64)] = len(target.problems) - 1

    cell_ok = np.logical_and.reduce([c.problem < 0 for c in checks.values()])
    record_keys = _record_keys(item, checks)
    duplicate_of = np.full(len(record_keys), -1, dtype=np.int64)
    keys = pd.Series(record_keys)
    valid_keys = keys[cell_ok]
    repeated = valid_keys.duplicated(keep="first")
    if repeated.any():
        first_index = valid_keys[~repeated].reset_index().set_index(0)["index"]
        dup_rows = valid_keys[repeated]
        duplicate_of[dup_rows.index.to_numpy()] = first_index.loc[dup_rows.to_numpy()].to_numpy()
    row_ok = cell_ok & (duplicate_of < 0)

    combined = np.zeros(len(record_keys), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for spec in item.fields:
            combined = combined * np.uint64(0x100000001B3) ^ checks[spec.name].hashes
    return ValidatedFrame(item=item, checks=checks, row_ok=row_ok, record_keys=record_keys,
                          content_hash=combined.view(np.int64), duplicate_of=duplicate_of)


def _record_keys(item: Item, checks: dict[str, FieldCheck]) -> np.ndarray:
    """The natural key of every row as text, ``"part1|part2"`` ("" for a bad part)."""
    joined: pd.Series | None = None
    for name in item.key:
        part = pd.Series(checks[name].values, dtype=object).fillna("").astype("str")
        joined = part if joined is None else joined + "|" + part
    assert joined is not None
    return joined.to_numpy(dtype=object)


def _cross_field_checks(item: Item, checks: dict[str, FieldCheck]) -> None:
    """Rules between fields of one row (after each field passed on its own)."""
    if "policy_valid_from" in checks and "policy_valid_to" in checks:
        start = checks["policy_valid_from"].values
        end = checks["policy_valid_to"].values
        both = (start != None) & (end != None)  # noqa: E711
        bad = np.zeros(len(start), dtype=bool)
        bad[both] = end[both].astype(str) < start[both].astype(str)  # ISO dates sort as text
        if bad.any():
            target = checks["policy_valid_to"]
            problem = Problem(Reason.DATE_ORDER,
                              f"{item.field('policy_valid_to').header} is before "
                              f"{item.field('policy_valid_from').header}. Remedy: correct the "
                              "policy period")
            target.problems.append(problem)
            target.problem[bad & (target.problem < 0)] = len(target.problems) - 1


# --------------------------------------------------------------------------- storing


class IngestReport(BaseModel):
    """What one ingestion did (printed by the CLI, asserted by the tests)."""

    batch_id: int
    item: str
    provider: str
    file: str
    file_format: str
    encoding: str | None
    data_date: dt.date
    already_ingested: bool
    rows_total: int
    rows_stored: int
    rows_unchanged: int
    rows_superseding: int
    rows_quarantined: int
    rows_normalised: int
    rows_warned: int
    quarantine_by_reason: dict[str, int]
    warnings_by_reason: dict[str, int]
    seconds: float
    phase_seconds: dict[str, float] = {}  # read, validate, store (this call, not a replay)


def _last_day(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return dt.date(year, month, calendar.monthrange(year, month)[1]).isoformat()


def record_data_dates(item: Item, validated: ValidatedFrame, batch_date: dt.date
                      ) -> np.ndarray:
    """Per row, the day its facts describe: the item's data-date field, else the batch's."""
    default = batch_date.isoformat()
    if item.data_date is None:
        return np.full(validated.n_rows, default, dtype=object)
    values = validated.checks[item.data_date].values
    if item.field(item.data_date).kind is Kind.PERIOD:
        uniques = {v: _last_day(v) for v in set(values.tolist()) if v is not None}
        return np.array([uniques.get(v, default) for v in values.tolist()], dtype=object)
    return np.where(values == None, default, values)  # noqa: E711


def _masked_cell(item: Item, name: str, raw: str, id_type: object) -> str | None:
    if raw == "":
        return None
    spec = item.field(name)
    if spec.kind in (Kind.USCC, Kind.ID_NUMBER, Kind.CODE):
        return mask_id(raw)[:80]
    return str(mask_value(item, name, raw, id_type=id_type if isinstance(id_type, str) else None)
               )[:80]


def _resolve_provider(item: Item, provider: str | None) -> str:
    """The provider code, given the code or the provider's Chinese name (``国网天津市电力公司``)."""
    if provider is not None:
        provider = provider.strip()
        by_name = {PROVIDERS[c].name_zh: c for c in item.providers}
        provider = by_name.get(provider, provider)
    if provider is None:
        if len(item.providers) == 1:
            return item.providers[0]
        raise CreditLabError(
            f"{item.name_zh} ({item.code}) has several providers: {', '.join(item.providers)}. "
            "Remedy: name the one that delivered this file with --provider")
    if provider not in item.providers:
        known = ", ".join(f"{c} ({PROVIDERS[c].name_zh})" for c in item.providers)
        raise CreditLabError(f"{provider!r} does not provide {item.name_zh}. Remedy: use one "
                             f"of: {known}")
    return provider


def _existing_keys(connection: Connection, item: Item, keys: list[str]
                   ) -> dict[str, tuple[int, int, int, str, bool, bool]]:
    """Latest version per natural key already stored.

    key → (hash, id, version, state, disputed, corrected); ``corrected``: the
    version was written by a correction (:mod:`lab.repair`), not a delivery.

    Only current and withdrawn versions matter (superseded ones have a newer
    version). A small batch looks up its keys in chunks of ``IN (…)``; a big
    one bulk-loads them into a temporary table and joins, so the cost follows
    the batch, not the years of history already stored.
    """
    model = record_model(item)
    cols = (model.record_key, model.content_hash, model.id, model.version, model.state,
            model.disputed, model.source_row.is_(None))
    live = model.state.in_((STATE_CURRENT, STATE_WITHDRAWN))
    if connection.execute(select(model.id).limit(1)).first() is None:
        return {}
    found: dict[str, tuple[int, int, int, str, bool, bool]] = {}
    if len(keys) <= _SMALL_BATCH:
        chunks = [keys[i:i + 500] for i in range(0, len(keys), 500)]
        results = (connection.execute(select(*cols).where(live, model.record_key.in_(c)))
                   for c in chunks)
        rows = (row for result in results for row in result)
    else:
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_KEYS_TABLE} (record_key VARCHAR(200) "
            "PRIMARY KEY)")
        connection.exec_driver_sql(f"DELETE FROM {_KEYS_TABLE}")
        bulk_insert(connection, _KEYS_TABLE, ["record_key"], ((k,) for k in keys), len(keys))
        batch_keys = sql_table(_KEYS_TABLE, sql_column("record_key"))
        rows = connection.execute(select(*cols).where(
            live, model.record_key.in_(select(batch_keys.c.record_key))))
    for key, content, rid, version, state, disputed, corrected in rows:
        if key not in found or version > found[key][2]:
            found[key] = (content, rid, version, state, disputed, bool(corrected))
    return found


def _timestamp(connection: Connection, moment: dt.datetime) -> object:
    """How a timestamp is bound by the bulk loader (SQLite stores SQLAlchemy's text form)."""
    if connection.dialect.name == "sqlite":
        return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def ingest_file(
    store: Store,
    item_ref: str | Item,
    path: str | Path,
    *,
    provider: str | None = None,
    data_date: dt.date | None = None,
    received_at: dt.datetime | None = None,
    actor: str = "ingest",
) -> IngestReport:
    """Validate one delivered file and store it as a batch (see the module docstring).

    Parameters
    ----------
    store : Store
        The platform store.
    item_ref : str or Item
        The catalog item (code, number or Chinese name).
    path : str or Path
        The CSV or XLSX file.
    provider : str, optional
        Provider code; required only for items with several providers.
    data_date : date, optional
        The batch's data date, used for records whose item has no data-date
        field; default: the latest data date in the file, else the receipt day.
    received_at : datetime, optional
        When the batch was received (UTC); default now. Dates describing the
        past must not be later than its day.
    actor : str
        Who ingests (recorded in the batch and the audit log).

    Raises
    ------
    BatchRefused
        The file is refused whole (recorded as a refused batch).
    CreditLabError
        Unknown item or provider.
    """
    started = time.perf_counter()
    item = item_ref if isinstance(item_ref, Item) else _get_item(item_ref)
    provider_code = _resolve_provider(item, provider)
    received = received_at or dt.datetime.now(dt.UTC)
    file = Path(path)

    phases: dict[str, float] = {}
    try:
        raw = read_table(file)
        frame = _map_headers(raw, item)
    except BatchRefused as refusal:
        _record_refusal(store, item, provider_code, file, refusal, received, actor, data_date)
        raise

    with store.session() as session:
        previous = session.scalar(select(Batch).where(
            Batch.item == item.code, Batch.provider == provider_code,
            Batch.file_sha256 == raw.sha256, Batch.status == "complete"))
        if previous is not None:
            return _report(previous, raw, already=True, session=session, started=started)

    phases["read"] = round(time.perf_counter() - started, 3)
    validated = validate_frame(item, frame, received=received.date(),
                               row_problems=_short_row_problems(raw, item))
    phases["validate"] = round(time.perf_counter() - started - phases["read"], 3)
    if data_date is None and item.data_date is not None:
        stated = validated.checks[item.data_date].values
        dates = [v for v in set(stated.tolist()) if v is not None]
        if dates:
            latest = max(dates)
            data_date = dt.date.fromisoformat(_last_day(latest) if len(latest) == 7 else latest)
    batch_date = data_date or received.date()

    with store.engine.begin() as connection:
        session = Session(bind=connection)
        batch = Batch(item=item.code, provider=provider_code, file_name=file.name,
                      file_sha256=raw.sha256, file_format=raw.file_format,
                      encoding=raw.encoding, data_date=batch_date, received_at=received,
                      ingested_by=actor, status="loading", rows_total=validated.n_rows)
        session.add(batch)
        session.flush()
        counts = _store_rows(connection, session, item, raw, validated, batch, received)
        for name, value in counts.items():
            setattr(batch, name, value)
        batch.status = "complete"
        session.add(AuditEvent(
            actor=actor, action="ingest", item=item.code, batch_id=batch.id,
            reason=f"delivery by {provider_code} of {file.name}",
            detail=json.dumps({k: v for k, v in counts.items()}),
        ))
        session.flush()
        report = _report(batch, raw, already=False, session=session, started=started)
        session.close()
    phases["store"] = round(time.perf_counter() - started - phases["read"] - phases["validate"],
                            3)
    report.phase_seconds = phases
    report.seconds = round(time.perf_counter() - started, 3)
    logger.info("ingested %s from %s: %d stored, %d unchanged, %d quarantined", item.code,
                file.name, report.rows_stored, report.rows_unchanged, report.rows_quarantined)
    return report


def _get_item(ref: str) -> Item:
    try:
        return get_item(ref)
    except KeyError as exc:
        raise CreditLabError(f"{exc.args[0]}. Remedy: `creditlab catalog` lists the items"
                             ) from exc


def _record_refusal(store: Store, item: Item, provider: str, file: Path, refusal: BatchRefused,
                    received: dt.datetime, actor: str, data_date: dt.date | None) -> None:
    """Keep a trace of a refused delivery (for provider feedback); store none of its rows."""
    digest = _sha256(file) if file.is_file() else "-"
    with store.session() as session:
        batch = Batch(item=item.code, provider=provider, file_name=file.name, file_sha256=digest,
                      file_format=file.suffix.lower().lstrip(".")[:8] or "-", encoding=None,
                      data_date=data_date or received.date(), received_at=received,
                      ingested_by=actor, status="refused",
                      refusal=f"{refusal.problem}. Remedy: {refusal.remedy}")
        session.add(batch)
        session.flush()
        session.add(AuditEvent(actor=actor, action="refuse_batch", item=item.code,
                               batch_id=batch.id, reason=refusal.problem))


def _store_rows(connection: Connection, session: Session, item: Item, raw: RawTable,
                validated: ValidatedFrame, batch: Batch, received: dt.datetime) -> dict[str, int]:
    """Quarantine the bad rows, store the new and changed ones; return the batch counts."""
    checks = validated.checks
    n = validated.n_rows
    quarantine: list[tuple[object, ...]] = []
    id_types = checks["id_type"].values if "id_type" in checks else np.full(n, None)
    for spec in item.fields:
        check = checks[spec.name]
        position = _column_of(raw, spec)
        for index in np.flatnonzero(check.problem >= 0).tolist():
            problem = check.problems[check.problem[index]]
            cell = str(raw.frame.iat[index, position])
            quarantine.append((batch.id, item.code, raw.path.name, index + _FIRST_DATA_ROW,
                               spec.name, spec.header, problem.code.value, problem.message,
                               _masked_cell(item, spec.name, cell, id_types[index])))
    key_header = item.field(item.key[0]).header
    for index in np.flatnonzero(validated.duplicate_of >= 0).tolist():
        first = int(validated.duplicate_of[index]) + _FIRST_DATA_ROW
        quarantine.append((batch.id, item.code, raw.path.name, index + _FIRST_DATA_ROW,
                           item.key[0], key_header, Reason.DUPLICATE_KEY.value,
                           f"same {' + '.join(item.field(k).header for k in item.key)} as row "
                           f"{first} of this file. Remedy: deliver one row per "
                           f"{item.grain.removeprefix('one row per ')}", None))

    keep = np.flatnonzero(validated.row_ok)
    keys = validated.record_keys[keep].tolist()
    existing = _existing_keys(connection, item, keys)
    insert_rows: list[int] = []
    versions: list[int] = []
    supersedes: list[object] = []
    disputed: list[bool] = []
    superseded_ids: list[int] = []
    unchanged = 0
    withdrawn_rows: list[int] = []
    overriding_rows: list[int] = []
    if not existing:  # nothing stored under these keys: every valid row is new
        insert_rows = keep.tolist()
    else:
        hashes = validated.content_hash[keep].tolist()
        for index, key, content in zip(keep.tolist(), keys, hashes, strict=True):
            found = existing.get(key)
            if found is None:
                insert_rows.append(index)
                versions.append(1)
                supersedes.append(None)
                disputed.append(False)
            elif found[3] == STATE_WITHDRAWN:
                withdrawn_rows.append(index)
            elif found[0] == content:
                unchanged += 1
            elif found[5]:  # a correction stands until the platform reviews it
                overriding_rows.append(index)
            else:
                insert_rows.append(index)
                versions.append(found[2] + 1)
                supersedes.append(found[1])
                disputed.append(found[4])
                superseded_ids.append(found[1])
    for index in withdrawn_rows:
        quarantine.append((batch.id, item.code, raw.path.name, index + _FIRST_DATA_ROW,
                           item.key[0], key_header, Reason.WITHDRAWN.value,
                           "this record was withdrawn by credit repair (信用修复) and is not "
                           "accepted again. Remedy: leave it out of future deliveries, or ask "
                           "the platform to review the repair", None))
    for index in overriding_rows:
        quarantine.append((batch.id, item.code, raw.path.name, index + _FIRST_DATA_ROW,
                           item.key[0], key_header, Reason.CORRECTED.value,
                           "this record was corrected on the platform after an objection "
                           "(异议处理) and the delivered values differ from the correction. "
                           "Remedy: correct the record in your own system too, or ask the "
                           "platform to review the correction", None))

    model = record_model(item)
    if superseded_ids:
        for start in range(0, len(superseded_ids), 500):
            connection.execute(update(model).where(
                model.id.in_(superseded_ids[start:start + 500])).values(state=STATE_SUPERSEDED))
    rows_idx = np.array(insert_rows, dtype=np.int64)
    entity = checks[item.entity].values[rows_idx]
    data_dates = record_data_dates(item, validated, batch.data_date)[rows_idx]
    n_new = len(insert_rows)
    # Same on every row: given once, not bound a million times (lab.store.bulk).
    constants: dict[str, object] = {
        "batch_id": batch.id, "provider": batch.provider, "state": STATE_CURRENT,
        "recorded_at": _timestamp(connection, received)}
    per_row: dict[str, list[object]] = {}
    for spec in item.fields:
        values = checks[spec.name].values[rows_idx]
        if values.dtype == object and all(value is None for value in values):
            constants[spec.name] = None  # a column this provider leaves empty
        else:
            per_row[spec.name] = values.tolist()
    per_row.update({
        "data_date": data_dates.tolist(), "source_row": (rows_idx + _FIRST_DATA_ROW).tolist(),
        "entity_key": entity.tolist(), "record_key": validated.record_keys[rows_idx].tolist(),
        "content_hash": validated.content_hash[rows_idx].tolist()})
    if superseded_ids:
        per_row.update({"version": versions, "disputed": disputed, "supersedes_id": supersedes})
    else:  # all new keys: first versions, undisputed, superseding nothing
        constants.update({"version": 1, "disputed": False, "supersedes_id": None})
    bulk_insert(connection, item.table_name, list(per_row),
                zip(*per_row.values(), strict=True), n_new, constants=constants)
    bulk_insert(connection, QuarantinedRow.__tablename__,
                ["batch_id", "item", "file_name", "row", "field", "header", "reason_code",
                 "reason", "value_masked"], quarantine, len(quarantine))

    warned = np.zeros(n, dtype=bool)
    for spec in item.fields:
        for mask, problem in checks[spec.name].warnings:
            rows = np.flatnonzero(mask & validated.row_ok)
            if rows.size:
                warned[rows] = True
                session.add(BatchWarning(
                    batch_id=batch.id, field=spec.name, reason_code=problem.code.value,
                    reason=problem.message, rows=int(rows.size),
                    first_rows=json.dumps((rows[:20] + _FIRST_DATA_ROW).tolist())))
    normalised = np.zeros(n, dtype=bool)
    for check in checks.values():
        if check.normalised is not None:
            normalised |= check.normalised
    return {
        "rows_stored": n_new,
        "rows_unchanged": unchanged,
        "rows_superseding": len(superseded_ids),
        "rows_quarantined": int((~validated.row_ok).sum()) + len(withdrawn_rows)
        + len(overriding_rows),
        "rows_normalised": int((normalised & validated.row_ok).sum()),
        "rows_warned": int(warned.sum()),
    }


def _column_of(raw: RawTable, spec: CatalogField) -> int:
    """Position of a field's column in the raw frame (the file's own column order)."""
    wanted = header_key(spec.header)
    return [header_key(h) for h in raw.headers].index(wanted)


def _report(batch: Batch, raw: RawTable, *, already: bool, session: Session,
            started: float) -> IngestReport:
    by_reason = dict(session.execute(
        select(QuarantinedRow.reason_code, func.count()).where(
            QuarantinedRow.batch_id == batch.id).group_by(QuarantinedRow.reason_code)).all())
    warnings = dict(session.execute(
        select(BatchWarning.reason_code, func.sum(BatchWarning.rows)).where(
            BatchWarning.batch_id == batch.id).group_by(BatchWarning.reason_code)).all())
    return IngestReport(
        batch_id=batch.id, item=batch.item, provider=batch.provider, file=str(raw.path),
        file_format=batch.file_format, encoding=batch.encoding, data_date=batch.data_date,
        already_ingested=already, rows_total=batch.rows_total, rows_stored=batch.rows_stored,
        rows_unchanged=batch.rows_unchanged, rows_superseding=batch.rows_superseding,
        rows_quarantined=batch.rows_quarantined, rows_normalised=batch.rows_normalised,
        rows_warned=batch.rows_warned, quarantine_by_reason={k: int(v) for k, v in
                                                             by_reason.items()},
        warnings_by_reason={k: int(v) for k, v in warnings.items()},
        seconds=round(time.perf_counter() - started, 3))
