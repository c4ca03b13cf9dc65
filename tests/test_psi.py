"""ECDH-PSI over Curve25519's prime-order subgroup by X25519 (crypto.psi)."""

from __future__ import annotations

import hashlib
import pickle

import nacl.bindings as sodium
import numpy as np
import pytest

import crypto.psi as psi
from crypto.errors import CryptoError
from crypto.identifiers import check_ids, uscc_check_char
from crypto.psi import (
    EmptyIntersectionError,
    PsiError,
    PsiParty,
    hash_to_group,
    intersect,
)

P = 2**255 - 19
REAL_USCCS = ["914403001922038216", "9144030071526726XG", "91110000802100433B"]


L = 2**252 + 27742317777372353535851937790883648493
SECRET_A = bytes.fromhex("a5" * 32)
SECRET_B = bytes.fromhex("3c" * 32)


def _clamped(secret: bytes) -> int:
    """The exponent X25519 uses for a secret (RFC 7748 clamping)."""
    k = bytearray(secret)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def _edwards_to_u(point: bytes) -> bytes:
    y = int.from_bytes(point, "little") & ((1 << 255) - 1)
    return ((1 + y) * pow(1 - y, -1, P) % P).to_bytes(32, "little")


def _uscc(serial: int) -> str:
    """A synthetic valid USCC (Tianjin prefix) from a serial number."""
    first17 = f"91120000{serial:09d}"
    return first17 + uscc_check_char(first17)


def _run_psi(
    ids_a: list[str], ids_b: list[str], workers: int | None = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full two-party run; returns both double-blinded lists and A's match indices."""
    party_a, party_b = PsiParty(), PsiParty()
    a1 = party_a.blind_own(ids_a, workers=workers)  # A -> B
    b1 = party_b.blind_own(ids_b, workers=workers)  # B -> A
    a2 = party_b.blind_other(a1, workers=workers)  # B -> A (A's ids, double-blinded)
    b2 = party_a.blind_other(b1, workers=workers)  # computed by A
    idx_a, idx_b = intersect(a2, b2)
    return a2, b2, idx_a, idx_b


# --------------------------------------------------------------------------- group and tokens


def test_known_answer_vectors_pin_hash_domain_and_encoding() -> None:
    # Changing HASH_DOMAIN, the hash or the map changes every token and breaks
    # interoperability between versions; these vectors catch that.
    assert (
        hash_to_group("914403001922038216").hex()
        == "de30d7957a6c6eb90382243cb1114b7bdd1d8343ed2876d956544b5dbf3afb6c"
    )
    single = PsiParty(SECRET_A).blind_own(["914403001922038216"], workers=1)
    assert single.tobytes().hex() == (
        "4d6ad74f7d10f89cdc45def97944415fdc90101120c8d1bbc5cc013eec48fe31"
    )
    double = PsiParty(SECRET_B).blind_other(single, workers=1)
    assert double.tobytes().hex() == (
        "4957d048894c0d80dec18bd102b06632fc117cdf3078ef7cbd391bc2e49c0651"
    )


def test_tokens_equal_an_independent_edwards_computation() -> None:
    """X25519(b, X25519(a, H(x))) = u((clamp(a)·clamp(b) mod L) · E(x)) on the Edwards form."""
    for i in range(20):
        normalised = f"ID{i}"
        digest = hashlib.sha512(psi.HASH_DOMAIN + normalised.encode()).digest()
        edwards = sodium.crypto_core_ed25519_from_uniform(digest[:32])
        assert sodium.crypto_core_ed25519_is_valid_point(edwards)  # prime-order subgroup
        assert hash_to_group(normalised) == _edwards_to_u(edwards)
        exponent = _clamped(SECRET_A) * _clamped(SECRET_B) % L
        expected = sodium.crypto_scalarmult_ed25519_noclamp(exponent.to_bytes(32, "little"),
                                                             edwards)
        single = PsiParty(SECRET_A).blind_own([normalised], workers=1)
        double = PsiParty(SECRET_B).blind_other(single, workers=1)
        assert double.tobytes() == _edwards_to_u(expected)


def test_blinding_commutes_and_depends_on_the_secret() -> None:
    ids = ["A1", "B2", "C3"]
    a, b, c = PsiParty(), PsiParty(), PsiParty()
    ab = b.blind_other(a.blind_own(ids, workers=1), workers=1)
    ba = a.blind_other(b.blind_own(ids, workers=1), workers=1)
    assert np.array_equal(ab, ba)
    ac = c.blind_other(a.blind_own(ids, workers=1), workers=1)
    assert not np.array_equal(ab, ac)
    assert ab.dtype == np.uint8 and ab.shape == (3, 32)
    assert len({row.tobytes() for row in ab}) == 3


def test_same_secret_gives_same_tokens_and_fresh_secrets_differ() -> None:
    secret = PsiParty.new_secret()
    first = PsiParty(secret).blind_own(["X1", "X2"], workers=1)
    again = PsiParty(secret).blind_own(["X1", "X2"], workers=1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, PsiParty().blind_own(["X1", "X2"], workers=1))


def test_secrets_that_clamp_alike_give_the_same_tokens() -> None:
    # X25519 ignores the low three bits and the top bit: document that, not rely on it.
    same = bytearray(SECRET_A)
    same[0] ^= 0b111
    same[31] ^= 0b1000_0000
    ids = ["X"]
    assert np.array_equal(PsiParty(SECRET_A).blind_own(ids, workers=1),
                          PsiParty(bytes(same)).blind_own(ids, workers=1))


def test_secret_never_leaves_the_object() -> None:
    secret = PsiParty.new_secret()
    party = PsiParty(secret)
    assert repr(party) == "PsiParty(secret=<hidden>)"
    assert secret.hex() not in repr(party)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(party)
    assert not hasattr(party, "__dict__")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (b"\x01" * 31, "got 31 bytes"),
        (bytes(32), "all zero bytes"),
        ("k" * 32, "got str"),
    ],
)
def test_bad_secrets_are_refused_without_echoing_them(secret: bytes, message: str) -> None:
    with pytest.raises(PsiError, match=message) as info:
        PsiParty(secret)
    assert "k" * 32 not in str(info.value)


# --------------------------------------------------------------------------- full runs


def test_messy_spellings_align_with_clean_ids_through_full_psi() -> None:
    clean = REAL_USCCS + [_uscc(i) for i in range(5)]
    messy = [
        "  914403001922038216 ",  # spaces
        "９１４４０３００７１５２６７２６ｘｇ",  # full-width and lower case
        "\u200b91110000802100433b\u200b",  # zero-width spaces, lower case
        "\u3000" + _uscc(0) + "\ufeff",  # ideographic space, BOM
        _uscc(1).lower(),
        _uscc(100),  # only on the messy side
        _uscc(101),
    ]
    bank = check_ids(clean, "uscc")
    platform = check_ids(messy, "uscc")
    assert bank.invalid == [] and platform.invalid == []
    bank_rows, bank_ids = bank.unique_valid()
    plat_rows, plat_ids = platform.unique_valid()

    _, _, idx_bank, idx_plat = _run_psi(bank_ids, plat_ids)

    matched = sorted((bank_rows[i], plat_rows[j]) for i, j in zip(idx_bank, idx_plat, strict=True))
    assert matched == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]
    for i, j in zip(idx_bank, idx_plat, strict=True):
        assert bank_ids[i] == plat_ids[j]


def test_blind_own_normalises_so_raw_and_clean_spellings_get_equal_tokens() -> None:
    party = PsiParty()
    raw = party.blind_own(
        ["９１４４０３００１９２２０３８２１６", " 9144030071526726xg\u200b"], workers=1
    )
    clean = party.blind_own(REAL_USCCS[:2], workers=1)
    assert np.array_equal(raw, clean)


def test_invalid_uscc_is_reported_and_never_matched() -> None:
    bad = REAL_USCCS[0][:17] + "7"  # wrong check character, held by both sides
    bank = check_ids([REAL_USCCS[1], bad, REAL_USCCS[2]], "uscc")
    platform = check_ids([bad, REAL_USCCS[1]], "uscc")
    assert [(row, masked) for row, masked, _ in bank.invalid] == [(1, "91**************17")]
    assert [(row, masked) for row, masked, _ in platform.invalid] == [(0, "91**************17")]
    assert bank.normalised[1] is None and platform.normalised[0] is None

    bank_rows, bank_ids = bank.unique_valid()
    plat_rows, plat_ids = platform.unique_valid()
    assert bad not in bank_ids and bad not in plat_ids
    _, _, idx_bank, idx_plat = _run_psi(bank_ids, plat_ids)
    assert [bank_rows[i] for i in idx_bank] == [0]
    assert [plat_rows[j] for j in idx_plat] == [1]


def test_duplicates_are_reported_and_refused_by_psi() -> None:
    report = check_ids([REAL_USCCS[0], " " + REAL_USCCS[0].lower(), REAL_USCCS[1]], "uscc")
    assert report.duplicates == [("91**************16", [0, 1])]
    assert report.valid_unique_count == 2
    with pytest.raises(PsiError, match=r"rows 0 and 1 are the same id \(91\*+16\)"):
        PsiParty().blind_own([REAL_USCCS[0], " " + REAL_USCCS[0]], workers=1)
    points = PsiParty().blind_own(REAL_USCCS, workers=1)
    repeated = np.concatenate([points, points[1:2]])
    with pytest.raises(PsiError, match="other_double has the same token at rows 1 and 3"):
        intersect(points, repeated)


def test_blind_own_refuses_empty_and_non_text_ids() -> None:
    with pytest.raises(PsiError, match="row 1 is empty after normalisation"):
        PsiParty().blind_own(["A", " \u200b "], workers=1)
    with pytest.raises(PsiError, match="row 0 is int"):
        PsiParty().blind_own([12], workers=1)  # type: ignore[list-item]


def test_empty_intersection_raises_with_counts_and_hints() -> None:
    with pytest.raises(EmptyIntersectionError) as info:
        _run_psi(["A1", "A2", "A3"], ["B1", "B2", "B3", "B4"])
    message = str(info.value)
    assert "own set (3 ids)" in message
    assert "other set (4 ids)" in message
    assert "normalise" in message and "id kind" in message and "same population" in message
    assert (info.value.own_count, info.value.other_count) == (3, 4)
    assert isinstance(info.value, PsiError)
    assert isinstance(info.value, CryptoError) and isinstance(info.value, ValueError)
    assert pickle.loads(pickle.dumps(info.value)).own_count == 3


def test_empty_inputs_raise_empty_intersection() -> None:
    empty = np.zeros((0, 32), dtype=np.uint8)
    assert PsiParty().blind_own([], workers=1).shape == (0, 32)
    with pytest.raises(EmptyIntersectionError, match=r"\(0 ids\)"):
        intersect(empty, PsiParty().blind_own(["A"], workers=1))


def test_intersection_is_ordered_by_token_bytes_and_agreed_by_both_sides() -> None:
    ids_a = [f"ID{i}" for i in range(200)]
    ids_b = [f"ID{i}" for i in range(100, 300)][::-1]
    a2, b2, idx_a, idx_b = _run_psi(ids_a, ids_b)
    assert len(idx_a) == 100
    assert idx_a.dtype == np.int64 and idx_b.dtype == np.int64
    assert [ids_a[i] for i in idx_a] == [ids_b[j] for j in idx_b]
    tokens = [a2[i].tobytes() for i in idx_a]
    assert tokens == sorted(tokens)
    assert np.array_equal(a2[idx_a], b2[idx_b])
    # The other side, with the roles swapped, gets the same pairs in the same order.
    idx_b_view, idx_a_view = intersect(b2, a2)
    assert np.array_equal(idx_a_view, idx_a) and np.array_equal(idx_b_view, idx_b)


def test_intersect_checks_shapes() -> None:
    good = PsiParty().blind_own(["A"], workers=1)
    with pytest.raises(PsiError, match=r"own_double must be a uint8 array .* got int64"):
        intersect(good.astype(np.int64), good)
    with pytest.raises(PsiError, match=r"other_double must be a uint8 array .* shape \(1, 16\)"):
        intersect(good, good[:, :16])
    with pytest.raises(PsiError, match="got list"):
        intersect(good, [list(good[0])])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- point validation


def _u(value: int) -> bytes:
    return value.to_bytes(32, "little")


def _twist_point() -> bytes:
    """A canonical u whose u³ + A·u² + u is not a square: a point of the twist."""
    for u in range(2, 1000):
        if pow((u**3 + 486662 * u * u + u) % P, (P - 1) // 2, P) == P - 1:
            return _u(u)
    raise AssertionError("no twist point below 1000")


# The points of order 8 on Curve25519 (RFC 7748 errata / libsodium's blocklist).
ORDER_8_U = 0x57119FD0DD4E22D8868E1C58C45C44045BEF839C55B1D0B1248C50A3BC959C5F


def _invalid_points() -> dict[str, tuple[bytes, str]]:
    return {
        "identity (u = 0)": (_u(0), "of small order"),
        "order 4 (u = 1)": (_u(1), "of small order"),
        "order 8": (_u(ORDER_8_U), "of small order"),
        "u = p": (_u(P), "non-canonical"),
        "u >= p": (_u(P + 3), "non-canonical"),
        "top bit set": (_u(9 | (1 << 255)), "non-canonical"),
        "twist": (_twist_point(), "quadratic twist"),
    }


@pytest.mark.parametrize("kind", sorted(_invalid_points()))
def test_invalid_point_is_rejected_naming_the_row(kind: str) -> None:
    bad, why = _invalid_points()[kind]
    points = PsiParty().blind_own(["A", "B", "C", "D"], workers=1)
    points[2] = np.frombuffer(bad, dtype=np.uint8)
    with pytest.raises(PsiError, match=f"received point at row 2 is not a valid element.*{why}"):
        PsiParty().blind_other(points, workers=1)


def test_a_torsion_component_is_erased_by_the_clamped_exponent() -> None:
    """Q + T (T of order 2) blinds to the same token as Q: nothing about a mod 8 leaks."""
    edwards = sodium.crypto_core_ed25519_from_uniform(bytes(range(32)))
    order2 = _u(P - 1)  # the Edwards point (0, -1), of order 2
    shifted = _edwards_to_u(sodium.crypto_core_ed25519_add(edwards, order2))
    clean = _edwards_to_u(edwards)
    party = PsiParty()
    both = party.blind_other(np.frombuffer(clean + shifted, dtype=np.uint8).reshape(2, 32),
                             workers=1)
    assert both[0].tobytes() == both[1].tobytes()


def test_blind_other_checks_shape_and_dtype() -> None:
    with pytest.raises(PsiError, match=r"shape \(n, 32\), got uint8 with shape \(32,\)"):
        PsiParty().blind_other(np.zeros(32, dtype=np.uint8), workers=1)
    with pytest.raises(PsiError, match="got float64"):
        PsiParty().blind_other(np.zeros((2, 32)), workers=1)


def test_blind_other_accepts_non_contiguous_input() -> None:
    points = PsiParty().blind_own([f"ID{i}" for i in range(6)], workers=1)
    party = PsiParty()
    assert np.array_equal(
        party.blind_other(points[::2], workers=1),
        party.blind_other(np.ascontiguousarray(points[::2]), workers=1),
    )


# --------------------------------------------------------------------------- process pool


def test_plan_workers() -> None:
    per = psi.MIN_ITEMS_PER_WORKER
    assert psi._plan_workers(10, 4) == 1
    assert psi._plan_workers(2 * per, 2) == 2
    assert psi._plan_workers(2 * per - 1, 2) == 1
    assert psi._plan_workers(100 * per, 3) == 3
    assert psi._plan_workers(100 * per, None) >= 1
    with pytest.raises(PsiError, match="workers must be >= 1"):
        psi._plan_workers(10, 0)


def test_pool_and_no_pool_give_identical_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psi, "MIN_ITEMS_PER_WORKER", 10)
    monkeypatch.setattr(psi, "get_pool", lambda: None)  # no shared pool: one pool per call
    contexts: list[str] = []
    real_context = psi._pool_context

    def spy() -> object:
        ctx = real_context()
        contexts.append(ctx.get_start_method())
        return ctx

    monkeypatch.setattr(psi, "_pool_context", spy)
    secret = PsiParty.new_secret()
    ids = [_uscc(i) for i in range(301)]
    other = PsiParty().blind_own([_uscc(i) for i in range(150, 450)], workers=1)

    serial_own = PsiParty(secret).blind_own(ids, workers=1)
    serial_other = PsiParty(secret).blind_other(other, workers=1)
    assert contexts == []
    pooled_own = PsiParty(secret).blind_own(ids, workers=3)
    pooled_other = PsiParty(secret).blind_other(other, workers=2)

    assert contexts and all(method in ("forkserver", "spawn") for method in contexts)
    assert len(contexts) == 2
    assert np.array_equal(serial_own, pooled_own)
    assert np.array_equal(serial_other, pooled_other)


def test_shared_crypto_pool_gives_identical_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the party's long-lived crypto pool no pool is started per call; same tokens."""
    from crypto.pool import get_pool, parallelism

    shared = get_pool()
    if shared is None:
        pytest.skip("one usable core: no crypto pool")
    monkeypatch.setattr(psi, "MIN_ITEMS_PER_WORKER", 10)
    started: list[str] = []
    monkeypatch.setattr(psi, "_pool_context", lambda: started.append("pool") or None)
    secret = PsiParty.new_secret()
    ids = [_uscc(i) for i in range(301)]
    workers = parallelism(shared)
    pooled_own = PsiParty(secret).blind_own(ids, workers=workers)
    pooled_other = PsiParty(secret).blind_other(pooled_own, workers=workers)
    assert started == []
    assert np.array_equal(pooled_own, PsiParty(secret).blind_own(ids, workers=1))
    assert np.array_equal(pooled_other, PsiParty(secret).blind_other(pooled_own, workers=1))
    bad = pooled_own.copy()
    bad[123] = np.frombuffer(_u(1), dtype=np.uint8)
    with pytest.raises(PsiError, match="row 123"):
        PsiParty(secret).blind_other(bad, workers=workers)


def test_pool_names_the_global_row_of_a_bad_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psi, "MIN_ITEMS_PER_WORKER", 10)
    points = PsiParty().blind_own([f"ID{i}" for i in range(60)], workers=1)
    points[47] = np.frombuffer(_u(1), dtype=np.uint8)
    with pytest.raises(PsiError, match="row 47 "):
        PsiParty().blind_other(points, workers=2)
