"""Identifier normalisation and check-character validation (crypto.identifiers)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from crypto.identifiers import (
    USCC_ALPHABET,
    IdCheckReport,
    check_ids,
    mask_id,
    normalise_id,
    organisation_code_is_valid,
    resident_id_is_valid,
    uscc_check_char,
    uscc_is_valid,
)

REAL_USCCS = ["914403001922038216", "9144030071526726XG", "91110000802100433B"]
REAL_RESIDENT_ID = "11010519491231002X"


def _with_resident_check(first17: str) -> str:
    """Append the ISO 7064 MOD 11-2 check character (independent re-implementation)."""
    total = sum(int(ch) * (2 ** (17 - i) % 11) for i, ch in enumerate(first17))
    return first17 + "10X98765432"[total % 11]


# --------------------------------------------------------------------------- normalise_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("914403001922038216", "914403001922038216"),
        ("  914403001922038216\t\n", "914403001922038216"),
        ("9144030071526726xg", "9144030071526726XG"),
        ("９１４４０３００１９２２０３８２１６", "914403001922038216"),  # full-width digits
        ("９１４４０３００７１５２６７２６ｘｇ", "9144030071526726XG"),  # full-width letters
        ("\u3000914403001922038216\u3000", "914403001922038216"),  # ideographic space
        ("\u00a091110000802100433b\u00a0", "91110000802100433B"),  # no-break space
        ("9144\u200b030019\u200c2203\u200d8216", "914403001922038216"),  # zero-width inside
        ("\ufeff914403001922038216\u2060", "914403001922038216"),  # BOM, word joiner
        ("\u200b 914403001922038216 \u200b", "914403001922038216"),  # zero-width outside space
        ("", ""),
        (" \u200b\u3000 ", ""),
    ],
)
def test_normalise_id_maps_spellings_to_the_clean_form(raw: str, expected: str) -> None:
    assert normalise_id(raw) == expected


def test_normalise_id_keeps_inner_spaces_so_they_are_reported_not_guessed() -> None:
    assert normalise_id("9144 0300") == "9144 0300"


@pytest.mark.parametrize("raw", ["ΐ abc", "ﬀ", "ǅ", "ß", "１２３ｘ", " x\u200b ", "İ"])
def test_normalise_id_is_idempotent(raw: str) -> None:
    once = normalise_id(raw)
    assert normalise_id(once) == once


# --------------------------------------------------------------------------- mask_id


def test_mask_id_shows_two_first_and_two_last_characters() -> None:
    assert mask_id("914403001922038216") == "91**************16"
    assert mask_id("1234567") == "12***67"
    assert mask_id("123456") == "******"
    assert mask_id("42") == "**"
    assert mask_id("") == ""


# --------------------------------------------------------------------------- USCC


@pytest.mark.parametrize("code", REAL_USCCS)
def test_real_usccs_are_valid(code: str) -> None:
    assert uscc_is_valid(code)
    assert uscc_check_char(code[:17]) == code[17]


def test_uscc_check_chars_of_the_real_codes() -> None:
    assert [uscc_check_char(c[:17]) for c in REAL_USCCS] == ["6", "G", "B"]


@pytest.mark.parametrize("code", REAL_USCCS)
def test_uscc_any_single_substitution_is_detected(code: str) -> None:
    # Every position, every other character of the alphabet: 18 x 30 codes.
    changed = 0
    for pos in range(18):
        for ch in USCC_ALPHABET:
            if ch == code[pos]:
                continue
            mutated = code[:pos] + ch + code[pos + 1 :]
            assert not uscc_is_valid(mutated), f"position {pos + 1} -> {ch} accepted"
            changed += 1
    assert changed == 18 * 30


@pytest.mark.parametrize(
    "code",
    [
        "91440300192203821",  # 17 characters
        "9144030019220382166",  # 19 characters
        "9144030019220382I6",  # I is excluded from the alphabet
        "9144030019220382O6",  # O too
        "91440300192203821Z",  # Z too
        "9144030071526726xg",  # not normalised
        " 914403001922038216",
    ],
)
def test_uscc_rejects_malformed_codes(code: str) -> None:
    assert not uscc_is_valid(code)


def test_uscc_check_char_rejects_bad_input_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="position 3 is outside the USCC alphabet") as info:
        uscc_check_char("91I40300192203821")
    assert "91I40300192203821" not in str(info.value)
    with pytest.raises(ValueError, match="got 5"):
        uscc_check_char("91440")


def test_uscc_check_value_31_maps_to_zero() -> None:
    # Find a prefix whose weighted sum is 0 mod 31: check = 31 -> '0'.
    weights = [pow(3, i, 31) for i in range(17)]
    prefix = "9" + "1" + "0" * 15
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(prefix, weights, strict=True))
    # Adjust the last character so the sum becomes 0 mod 31.
    need = (-(total - 0)) % 31 * pow(weights[16], -1, 31) % 31
    prefix = prefix[:16] + USCC_ALPHABET[need]
    assert sum(USCC_ALPHABET.index(c) * w for c, w in zip(prefix, weights, strict=True)) % 31 == 0
    assert uscc_check_char(prefix) == "0"
    assert uscc_is_valid(prefix + "0")


# --------------------------------------------------------------------------- GB 11714


@pytest.mark.parametrize("code", REAL_USCCS)
def test_organisation_code_inside_real_usccs_is_valid(code: str) -> None:
    assert organisation_code_is_valid(code[8:17])


def test_organisation_code_check_values() -> None:
    assert organisation_code_is_valid("192203821")
    assert organisation_code_is_valid("71526726X")  # check 10 -> X
    assert not organisation_code_is_valid("192203822")
    assert not organisation_code_is_valid("71526726x")
    assert not organisation_code_is_valid("19220382")
    assert not organisation_code_is_valid("1922038-1")
    # A body whose weighted sum is 0 mod 11 has check 11 -> '0'.
    assert organisation_code_is_valid("000000000")


# --------------------------------------------------------------------------- resident id


def test_real_resident_id_is_valid() -> None:
    assert resident_id_is_valid(REAL_RESIDENT_ID)


def test_resident_id_lower_case_x_is_valid_only_after_normalisation() -> None:
    assert not resident_id_is_valid(REAL_RESIDENT_ID.lower())
    assert resident_id_is_valid(normalise_id(" " + REAL_RESIDENT_ID.lower()))


def test_resident_id_any_single_digit_change_is_detected_or_breaks_the_date() -> None:
    for pos in range(18):
        for ch in "0123456789X":
            if ch == REAL_RESIDENT_ID[pos] or (ch == "X" and pos < 17):
                continue
            mutated = REAL_RESIDENT_ID[:pos] + ch + REAL_RESIDENT_ID[pos + 1 :]
            assert not resident_id_is_valid(mutated), f"position {pos + 1} -> {ch} accepted"


@pytest.mark.parametrize(
    "first17",
    [
        "11010519490231002",  # 31 Feb
        "11010519491301002",  # month 13
        "11010518991231002",  # before 1900
        "11010519000229002",  # 1900 is not a leap year
    ],
)
def test_resident_id_with_correct_check_but_bad_birth_date_is_invalid(first17: str) -> None:
    assert not resident_id_is_valid(_with_resident_check(first17))


def test_resident_id_birth_date_in_the_future_is_invalid() -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    code = _with_resident_check("110105" + tomorrow.strftime("%Y%m%d") + "002")
    assert not resident_id_is_valid(code)
    today = _with_resident_check("110105" + dt.date.today().strftime("%Y%m%d") + "002")
    assert resident_id_is_valid(today)


def test_resident_id_leap_day_is_valid() -> None:
    assert resident_id_is_valid(_with_resident_check("11010520000229002"))


@pytest.mark.parametrize(
    "code", ["1101051949123100X2", "11010519491231002", "A1010519491231002X", "１１０１"]
)
def test_resident_id_rejects_malformed(code: str) -> None:
    assert not resident_id_is_valid(code)


# --------------------------------------------------------------------------- check_ids


def test_check_ids_normalises_reports_invalid_and_duplicates() -> None:
    bad_check = REAL_USCCS[0][:17] + "7"
    raw = [
        " 914403001922038216 ",  # 0 valid
        "９１４４０３００１９２２０３８２１６",  # 1 duplicate of row 0
        "9144030071526726xg",  # 2 valid
        bad_check,  # 3 wrong check character
        "",  # 4 empty
        "91110000802100433B\u200b",  # 5 valid
        "9144030019220382I6",  # 6 bad alphabet
        "\u200b914403001922038216",  # 7 duplicate of row 0
    ]
    report = check_ids(raw, "uscc")
    assert isinstance(report, IdCheckReport)
    assert report.n_rows == 8
    assert report.normalised == [
        "914403001922038216",
        "914403001922038216",
        "9144030071526726XG",
        None,
        None,
        "91110000802100433B",
        None,
        "914403001922038216",
    ]
    assert [(row, masked) for row, masked, _ in report.invalid] == [
        (3, "91**************17"),
        (4, ""),
        (6, "91**************I6"),
    ]
    reasons = [reason for _, _, reason in report.invalid]
    assert "check character" in reasons[0]
    assert reasons[1] == "empty after normalisation"
    assert "position 17" in reasons[2]
    assert report.duplicates == [("91**************16", [0, 1, 7])]
    assert report.valid_unique_count == 3
    assert report.warnings == []
    assert report.unique_valid() == (
        [0, 2, 5],
        ["914403001922038216", "9144030071526726XG", "91110000802100433B"],
    )


def test_check_ids_never_shows_full_ids_in_repr() -> None:
    report = check_ids([REAL_USCCS[0], REAL_USCCS[0][:17] + "7"], "uscc")
    text = repr(report) + str(report)
    assert REAL_USCCS[0] not in text
    assert REAL_USCCS[0][:17] not in text
    assert "91**************17" in text


def test_check_ids_warns_on_an_organisation_code_that_fails_gb11714() -> None:
    # Change the organisation check (position 17) and re-issue the USCC check.
    first17 = REAL_USCCS[0][:16] + "2"
    code = first17 + uscc_check_char(first17)
    assert uscc_is_valid(code)
    report = check_ids([code], "uscc")
    assert report.invalid == []
    assert report.normalised == [code]
    assert report.warnings == [
        (0, mask_id(code), "organisation code (positions 9-17) fails GB 11714")
    ]


def test_check_ids_resident_id_and_mixed_kinds() -> None:
    raw = [REAL_RESIDENT_ID.lower(), REAL_USCCS[1], "11010519491231002Y"]
    rid = check_ids(raw, "resident_id")
    assert rid.normalised == [REAL_RESIDENT_ID, None, None]
    assert [row for row, _, _ in rid.invalid] == [1, 2]
    mixed = check_ids(raw, "uscc_or_resident_id")
    assert mixed.normalised == [REAL_RESIDENT_ID, REAL_USCCS[1], None]
    assert mixed.invalid[0][0] == 2
    assert mixed.invalid[0][1] == "11**************2Y"
    assert mixed.invalid[0][2].startswith("neither a USCC")
    assert mixed.valid_unique_count == 2


def test_check_ids_opaque_accepts_fate_style_integer_ids() -> None:
    raw = ["133", 7, np.int64(42), " 5 ", "", None, 1.0, float("nan"), True]
    report = check_ids(raw, "opaque")  # type: ignore[arg-type]
    assert report.normalised == ["133", "7", "42", "5", None, None, None, None, None]
    reasons = {row: reason for row, _, reason in report.invalid}
    assert reasons[4] == "empty after normalisation"
    assert reasons[5] == "missing value"
    assert "dtype=str" in reasons[6]
    assert reasons[7] == "missing value"
    assert "boolean" in reasons[8]
    assert report.valid_unique_count == 4


def test_check_ids_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown id kind 'ssn'"):
        check_ids(["1"], "ssn")  # type: ignore[arg-type]
