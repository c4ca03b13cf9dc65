"""Identifier normalisation and validation for entity alignment (PSI).

Why this module exists
----------------------
ECDH-PSI (``crypto.psi``) matches ids by hashing them to a curve point, so two
spellings of the same id that differ by one invisible character never match,
and the protocol cannot tell you which rows were "almost" equal without
leaking them. Everything that makes two spellings equal must therefore happen
*before* hashing, identically on both sides, and invalid ids must be reported
(quarantined with a reason) instead of silently failing to match.

Two steps:

1. :func:`normalise_id` — a fixed, documented canonical form: Unicode NFKC
   (full-width digits and letters become ASCII, the ideographic space U+3000
   and no-break space become a space), zero-width characters removed, outer
   whitespace stripped, upper-cased.
2. :func:`check_ids` — validates a column of ids for one :data:`IdKind` and
   returns an :class:`IdCheckReport` with the normalised ids, the invalid rows
   (masked) with a reason, and duplicate groups.

Check-character algorithms
--------------------------
* Unified social credit code, GB 32100-2015 (统一社会信用代码, 18 characters):
  alphabet ``0123456789ABCDEFGHJKLMNPQRTUWXY`` (I, O, S, V, Z excluded), so a
  character's value is its index (0..30). With weights ``w_i = 3^i mod 31``
  for the first 17 characters, ``check = 31 - (Σ value_i·w_i mod 31)``, and a
  result of 31 means 0. Because 31 is prime and every weight is non-zero mod
  31, any single substituted character changes the sum and is detected.
* Organisation code, GB 11714 (组织机构代码, characters 9-17 of the USCC):
  eight body characters (digits; letters A-Z count 10-35) with weights
  ``3 7 9 10 5 8 4 2``, ``check = 11 - (Σ mod 11)``, 10 → ``X``, 11 → ``0``.
  Codes issued after 2015 to some entity types do not follow it, so it is a
  warning only.
* PRC resident identity number, GB 11643 (18 characters): ISO 7064 MOD 11-2,
  weights ``2^(17-i) mod 11``, check character ``"10X98765432"[Σ mod 11]``,
  plus a real birth date (YYYYMMDD at positions 7-14).

Personal data
-------------
Ids identify enterprises and, for resident ids, natural persons. Nothing here
prints or logs a full id: reports carry ids only through :func:`mask_id`
(first two and last two characters), and the report's ``repr`` omits the
normalised column.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import numbers
import unicodedata
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "USCC_ALPHABET",
    "IdCheckReport",
    "IdKind",
    "check_ids",
    "mask_id",
    "normalise_id",
    "organisation_code_is_valid",
    "resident_id_is_valid",
    "uscc_check_char",
    "uscc_is_valid",
]

logger = logging.getLogger(__name__)

IdKind = Literal["uscc", "resident_id", "uscc_or_resident_id", "opaque"]
_ID_KINDS: tuple[str, ...] = ("uscc", "resident_id", "uscc_or_resident_id", "opaque")

# --------------------------------------------------------------------------- normalisation

# Zero-width characters survive NFKC and are invisible in spreadsheets and
# logs, which makes them the classic cause of "the same id did not match".
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def normalise_id(raw: str) -> str:
    """Return the canonical form of an id, as both PSI parties must hash it.

    Steps, in order: NFKC (full-width ``９１４４`` → ``9144``, U+3000 → space),
    remove zero-width characters (U+200B..U+200D, U+2060, U+FEFF), strip outer
    whitespace, upper-case, then NFKC once more so the function is idempotent
    (upper-casing can produce decomposed sequences for a few non-ASCII letters).
    Inner whitespace is kept: it never occurs in a valid USCC or resident id,
    so such an id is reported invalid rather than guessed at.

    Parameters
    ----------
    raw : str
        The id as read from a file or typed by a user.

    Returns
    -------
    str
        The normalised id; may be empty (callers treat that as invalid).
    """
    text = unicodedata.normalize("NFKC", raw).translate(_ZERO_WIDTH).strip()
    return unicodedata.normalize("NFKC", text.upper())


def mask_id(s: str) -> str:
    """Mask an id for logs and reports: keep the first 2 and last 2 characters.

    The length is kept (``*`` per hidden character) because a wrong length is
    the most common defect and worth seeing. Strings of 6 characters or fewer
    are masked entirely: showing four of them would show almost all of it.

    Examples
    --------
    >>> mask_id("914403001922038216")
    '91**************16'
    >>> mask_id("12345")
    '*****'
    """
    if len(s) <= 6:
        return "*" * len(s)
    return s[:2] + "*" * (len(s) - 4) + s[-2:]


# --------------------------------------------------------------------------- USCC (GB 32100)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC_ALPHABET_TEXT = "digits and A-Y without I, O, S, V, Z"


def uscc_check_char(first17: str) -> str:
    """Compute the GB 32100-2015 check character (position 18) of a USCC.

    Parameters
    ----------
    first17 : str
        The first 17 characters of a normalised USCC (upper case).

    Raises
    ------
    ValueError
        If ``first17`` is not 17 characters of the USCC alphabet. The message
        names the position, never the id.
    """
    if len(first17) != 17:
        raise ValueError(f"expected the first 17 characters of a USCC, got {len(first17)}")
    total = 0
    for pos, (ch, weight) in enumerate(zip(first17, _USCC_WEIGHTS, strict=True), start=1):
        value = _USCC_VALUE.get(ch)
        if value is None:
            raise ValueError(
                f"character at position {pos} is outside the USCC alphabet ({_USCC_ALPHABET_TEXT})"
            )
        total += value * weight
    check = 31 - total % 31
    return USCC_ALPHABET[0 if check == 31 else check]


def _uscc_problem(code: str) -> str | None:
    """Return why ``code`` is not a valid USCC, or None if it is."""
    if len(code) != 18:
        return f"length {len(code)}, a USCC has 18 characters"
    for pos, ch in enumerate(code, start=1):
        if ch not in _USCC_VALUE:
            return (
                f"character at position {pos} is outside the USCC alphabet ({_USCC_ALPHABET_TEXT})"
            )
    if uscc_check_char(code[:17]) != code[17]:
        return "check character (position 18) does not match GB 32100-2015"
    return None


def uscc_is_valid(code: str) -> bool:
    """Whether ``code`` is a GB 32100-2015 unified social credit code.

    Strict: expects the normalised form (see :func:`normalise_id`); lower-case
    or padded input is not valid here.
    """
    return _uscc_problem(code) is None


# --------------------------------------------------------------------------- GB 11714

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def organisation_code_is_valid(code9: str) -> bool:
    """Whether a 9-character organisation code passes the GB 11714 check.

    The organisation code sits at positions 9-17 of a USCC. Body characters
    are digits or upper-case letters (A=10 … Z=35); the check character is
    ``11 - (Σ mod 11)`` with 10 → ``X`` and 11 → ``0``. Used as a warning only:
    a USCC can be valid while its embedded code does not follow GB 11714.
    """
    if len(code9) != 9:
        return False
    total = 0
    for ch, weight in zip(code9[:8], _ORG_WEIGHTS, strict=True):
        if "0" <= ch <= "9":
            value = ord(ch) - ord("0")
        elif "A" <= ch <= "Z":
            value = ord(ch) - ord("A") + 10
        else:
            return False
        total += value * weight
    check = 11 - total % 11
    expected = {10: "X", 11: "0"}.get(check, str(check))
    return code9[8] == expected


# --------------------------------------------------------------------------- resident id

_RID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_RID_CHECK = "10X98765432"


def _resident_id_problem(code: str, today: _dt.date | None = None) -> str | None:
    """Return why ``code`` is not a valid resident id, or None if it is."""
    if len(code) != 18:
        return f"length {len(code)}, a resident id has 18 characters"
    body = code[:17]
    if not (body.isascii() and body.isdigit()):
        return "positions 1-17 of a resident id must be digits"
    if code[17] not in "0123456789X":
        return "position 18 of a resident id must be a digit or X"
    try:
        birth = _dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return "birth date (positions 7-14) is not a calendar date"
    if birth.year < 1900:
        return "birth date (positions 7-14) is before 1900"
    if birth > (today or _dt.date.today()):
        return "birth date (positions 7-14) is in the future"
    total = sum(int(ch) * w for ch, w in zip(body, _RID_WEIGHTS, strict=True))
    if _RID_CHECK[total % 11] != code[17]:
        return "check character (position 18) does not match ISO 7064 MOD 11-2"
    return None


def resident_id_is_valid(code: str) -> bool:
    """Whether ``code`` is an 18-character PRC resident identity number.

    Checks the ISO 7064 MOD 11-2 check character and that positions 7-14 are
    a real birth date (YYYYMMDD, year ≥ 1900, not in the future). Strict:
    expects the normalised form, so a trailing ``x`` must be ``X``.
    """
    return _resident_id_problem(code) is None


# --------------------------------------------------------------------------- column check


class IdCheckReport(BaseModel):
    """Result of :func:`check_ids` on one id column.

    Attributes
    ----------
    kind : IdKind
        The id kind that was checked.
    n_rows : int
        Number of input rows.
    normalised : list[str | None]
        Normalised id per input row, same order; None where the row is invalid.
        Holds full ids (personal data), so it is left out of ``repr``.
    invalid : list[tuple[int, str, str]]
        ``(row index, masked raw value, reason)`` per invalid row.
    duplicates : list[tuple[str, list[int]]]
        ``(masked normalised id, row indices)`` per valid id seen more than
        once, in order of first occurrence.
    warnings : list[tuple[int, str, str]]
        ``(row index, masked normalised id, message)`` for valid rows with a
        non-fatal oddity (a USCC whose GB 11714 organisation code fails).
    valid_unique_count : int
        Number of distinct valid ids.
    """

    model_config = ConfigDict(frozen=True)

    kind: IdKind
    n_rows: int
    normalised: list[str | None] = Field(repr=False)
    invalid: list[tuple[int, str, str]]
    duplicates: list[tuple[str, list[int]]]
    warnings: list[tuple[int, str, str]]
    valid_unique_count: int

    def unique_valid(self) -> tuple[list[int], list[str]]:
        """Row index and id of the first occurrence of each distinct valid id.

        This is the input a party gives to PSI: a set, with the rows to map
        aligned ids back to. Later duplicates are listed in ``duplicates``.
        """
        seen: set[str] = set()
        rows: list[int] = []
        ids: list[str] = []
        for row, value in enumerate(self.normalised):
            if value is not None and value not in seen:
                seen.add(value)
                rows.append(row)
                ids.append(value)
        return rows, ids


def _problem_for_kind(value: str, kind: str) -> str | None:
    """Why a normalised, non-empty ``value`` is not a valid id of ``kind``."""
    if kind == "uscc":
        return _uscc_problem(value)
    if kind == "resident_id":
        return _resident_id_problem(value)
    if kind == "uscc_or_resident_id":
        as_uscc = _uscc_problem(value)
        if as_uscc is None:
            return None
        as_rid = _resident_id_problem(value)
        if as_rid is None:
            return None
        return f"neither a USCC ({as_uscc}) nor a resident id ({as_rid})"
    return None  # opaque: any non-empty normalised string


def _coerce_raw(raw: object) -> tuple[str | None, str | None]:
    """Turn one raw cell into text, or explain why it cannot be an id.

    Integers are accepted (the bundled FATE data uses integer ids); floats are
    refused because ``1.0`` and ``1`` would silently become different ids.
    """
    if isinstance(raw, str):
        return raw, None
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None, "missing value"
    if isinstance(raw, bool):
        return None, "boolean value, not an id"
    if isinstance(raw, numbers.Integral):  # int and numpy integers
        return str(int(raw)), None
    return None, (
        f"{type(raw).__name__} value, expected text; read the id column as strings (dtype=str)"
    )


def check_ids(raw_ids: Sequence[str], kind: IdKind) -> IdCheckReport:
    """Normalise and validate an id column before PSI.

    Parameters
    ----------
    raw_ids : Sequence[str]
        Ids as read (one per row). Integers are accepted and turned into text;
        missing values and floats are reported invalid.
    kind : {"uscc", "resident_id", "uscc_or_resident_id", "opaque"}
        What the column holds. ``"opaque"`` accepts any id that is non-empty
        after normalisation (e.g. the integer ids of the bundled FATE data).

    Returns
    -------
    IdCheckReport
        Normalised ids (None where invalid), invalid rows with masked values
        and reasons, duplicate groups, warnings and the distinct valid count.

    Raises
    ------
    ValueError
        If ``kind`` is not one of the four id kinds.
    """
    if kind not in _ID_KINDS:
        raise ValueError(f"unknown id kind {kind!r}; expected one of {', '.join(_ID_KINDS)}")
    normalised: list[str | None] = []
    invalid: list[tuple[int, str, str]] = []
    warnings: list[tuple[int, str, str]] = []
    rows_by_id: dict[str, list[int]] = {}
    for row, raw in enumerate(raw_ids):
        text, problem = _coerce_raw(raw)
        value = normalise_id(text) if text is not None else ""
        if problem is None and not value:
            problem = "empty after normalisation"
        if problem is None:
            problem = _problem_for_kind(value, kind)
        if problem is not None:
            normalised.append(None)
            invalid.append((row, mask_id(text if text is not None else str(raw)), problem))
            continue
        normalised.append(value)
        rows_by_id.setdefault(value, []).append(row)
        if (
            kind in ("uscc", "uscc_or_resident_id")
            and uscc_is_valid(value)
            and not organisation_code_is_valid(value[8:17])
        ):
            warnings.append(
                (row, mask_id(value), "organisation code (positions 9-17) fails GB 11714")
            )
    duplicates = [(mask_id(v), rows) for v, rows in rows_by_id.items() if len(rows) > 1]
    report = IdCheckReport(
        kind=kind,
        n_rows=len(normalised),
        normalised=normalised,
        invalid=invalid,
        duplicates=duplicates,
        warnings=warnings,
        valid_unique_count=len(rows_by_id),
    )
    logger.info(
        "checked %d ids of kind %s: %d invalid, %d duplicated ids, %d distinct valid",
        report.n_rows,
        kind,
        len(invalid),
        len(duplicates),
        report.valid_unique_count,
    )
    return report
