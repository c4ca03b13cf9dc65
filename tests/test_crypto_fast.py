"""Fast paths of the Paillier layer, each checked against phe's own decryption.

* CRT encryption by the key owner (:class:`crypto.pool.CRTFixedBaseTable`
  behind ``DJNEncryptor(private_key=...)``);
* ``Xᵀ[[e]]`` with equal feature values merged first (``group_equal``), in
  process and on the process pool;
* precomputed randomness (``refill``) feeding the CRT encryptor.

Inputs cover random vectors, negatives, the edges of the codec's range and of
``[0, n)``, zero rows, zero and constant columns. 1024-bit test-only keys.
"""

from __future__ import annotations

import pickle

import gmpy2
import numpy as np
import pytest
from gmpy2 import mpz

from crypto.codec import FixedPointCodec, quantise_features
from crypto.paillier import DJNEncryptor, generate_keypair
from crypto.pool import CRTFixedBaseTable, FixedBaseTable, get_pool, multiexp
from crypto.vector import EncryptedVector, encrypt_vector, xt_e


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(1024, test_only=True)


def _phe_decrypt(private_key, cts) -> list[int]:
    """phe's own CRT decryption, one ciphertext at a time."""
    return [int(private_key.raw_decrypt(int(c))) for c in cts]


# --------------------------------------------------------------------------- CRT encryption
def test_crt_table_equals_plain_table(keys) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    enc = DJNEncryptor(public_key)
    plain = FixedBaseTable(enc.h_s, n * n, enc.exponent_bits)
    crt = CRTFixedBaseTable(enc.h_s, int(private_key.p), int(private_key.q), enc.exponent_bits)
    rng = np.random.default_rng(1)
    exponents = [0, 1, (1 << enc.exponent_bits) - 1] + [
        int.from_bytes(rng.bytes(enc.exponent_bits // 8), "big") for _ in range(20)]
    for a in exponents:
        assert crt.pow(a) == plain.pow(a) == gmpy2.powmod(enc.h_s, a, n * n)


def test_crt_encryption_decrypts_with_phe(keys) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    enc = DJNEncryptor(public_key, private_key=private_key)
    assert enc.uses_crt
    rng = np.random.default_rng(2)
    ms = [0, 1, n - 1, n // 2, (n + 1) // 2] + [int(rng.integers(0, 2**62)) for _ in range(40)]
    cts = enc.encrypt_ints(ms)
    assert _phe_decrypt(private_key, cts) == ms
    assert len({int(c) for c in enc.encrypt_ints([5] * 30)}) == 30  # fresh randomness each


def test_crt_encrypted_vector_with_negatives_and_range_edges(keys) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    codec = FixedPointCodec()
    values = np.concatenate([
        [0.0, -0.0, codec.max_abs, -codec.max_abs, 1e-9, -1e-9],
        np.random.default_rng(3).normal(scale=5.0, size=64)])
    ev = encrypt_vector(DJNEncryptor(public_key, private_key=private_key), values, codec)
    want = [m % n for m in codec.encode(values)]
    assert _phe_decrypt(private_key, ev.ciphertexts) == want
    decoded = codec.decode(_phe_decrypt(private_key, ev.ciphertexts), n, codec.frac_bits)
    np.testing.assert_allclose(decoded, values, atol=2.0 ** -codec.frac_bits)


def test_crt_encryption_on_the_pool_and_from_refilled_randomness(keys) -> None:
    public_key, private_key = keys
    enc = DJNEncryptor(public_key, private_key=private_key, pool_size=50)
    assert enc.refill(pool=get_pool()) == 50
    ms = list(range(200))
    cts = enc.encrypt_ints(ms, pool=get_pool())  # 50 precomputed, 150 fresh on the pool
    assert enc.available == 0
    assert _phe_decrypt(private_key, cts) == ms


def test_crt_factors_never_leave_by_pickle_or_repr(keys) -> None:
    public_key, private_key = keys
    enc = DJNEncryptor(public_key, private_key=private_key)
    p = format(int(private_key.p), "x")
    assert p not in repr(enc.params) and p not in repr(enc)
    copy = pickle.loads(pickle.dumps(enc))
    assert not copy.uses_crt and copy.params.p == 0
    assert _phe_decrypt(private_key, copy.encrypt_ints([7, 0])) == [7, 0]


def test_crt_encryptor_refuses_another_keys_private_key(keys) -> None:
    public_key, _ = keys
    _, other_private = generate_keypair(1024, test_only=True)
    with pytest.raises(Exception, match="key"):
        DJNEncryptor(public_key, private_key=other_private)


# --------------------------------------------------------------------------- Xᵀ[[e]] grouping
def _features(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Columns of every kind the protocol meets, standardised-looking."""
    cols = [
        rng.normal(size=rows),                              # continuous
        rng.integers(0, 2, size=rows) * 2.0 - 1.0,          # binary, ±1
        rng.integers(-2, 9, size=rows).astype(float) / 3,   # repayment status
        np.where(rng.random(rows) < 0.6, -0.3, rng.exponential(size=rows)),  # zero amounts
        np.zeros(rows),                                     # all zero
        np.full(rows, 1.0),                                 # the intercept's ones column
        np.full(rows, -2.5),                                # constant negative
        np.round(rng.normal(size=rows), 1),                 # binned continuous
    ]
    X = np.column_stack(cols)
    X[rows // 3] = 0.0  # a zero row
    X[0, 0], X[-1, 0] = 40.0, -40.0  # range edges of the exponents (one row: -40)
    return X


def _exact_xt_e(X_q: np.ndarray, ms: list[int], n: int) -> list[int]:
    return [int(sum(int(x) * m for x, m in zip(X_q[:, j], ms, strict=True)) % n)
            for j in range(X_q.shape[1])]


@pytest.mark.parametrize("rows", [1, 17, 600])
def test_grouped_xt_e_matches_phe_and_the_ungrouped_product(keys, rows: int) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    codec = FixedPointCodec()
    rng = np.random.default_rng(rows)
    X_q = quantise_features(_features(rng, rows), 16, max_abs=1024.0)
    v = rng.normal(scale=2.0, size=rows)
    v[rows // 2] = 0.0
    ev = encrypt_vector(DJNEncryptor(public_key, private_key=private_key), v, codec)
    grouped = xt_e(X_q, 16, ev)
    plain = xt_e(X_q, 16, ev, group_equal=False)
    assert [int(c) for c in grouped.ciphertexts] == [int(c) for c in plain.ciphertexts]
    ms = [m % n for m in codec.encode(v)]
    assert _phe_decrypt(private_key, grouped.ciphertexts) == _exact_xt_e(X_q, ms, n)


def test_grouped_xt_e_on_the_pool_is_bit_identical(keys) -> None:
    public_key, private_key = keys
    rng = np.random.default_rng(7)
    X_q = quantise_features(_features(rng, 400), 16, max_abs=1024.0)
    ev = encrypt_vector(DJNEncryptor(public_key), rng.normal(size=400), FixedPointCodec())
    local = xt_e(X_q, 16, ev)
    pooled = xt_e(X_q, 16, ev, pool=get_pool())
    assert [int(c) for c in pooled.ciphertexts] == [int(c) for c in local.ciphertexts]


def test_multiexp_grouping_against_per_term_powmod(keys) -> None:
    public_key, _ = keys
    m = mpz(public_key.n) ** 2
    rng = np.random.default_rng(11)
    bases = [mpz(int(rng.integers(2, 2**62))) for _ in range(300)]
    for exps in (rng.integers(1, 4, size=300), np.full(300, 65536),
                 rng.integers(1, 2**22, size=300), np.repeat([3, 2**21 + 1], 150)):
        want = mpz(1)
        for b, e in zip(bases, exps.tolist(), strict=True):
            want = want * gmpy2.powmod(b, e, m) % m
        assert multiexp(bases, exps, m) == want
        assert multiexp(bases, exps, m, group_equal=False) == want


def test_empty_vector_products_are_encryptions_of_zero(keys) -> None:
    public_key, private_key = keys
    ev = EncryptedVector(public_key, [], 20)
    out = xt_e(np.zeros((0, 3), dtype=np.int64), 16, ev)
    assert _phe_decrypt(private_key, out.ciphertexts) == [0, 0, 0]


# --------------------------------------------------------------------------- packing
@pytest.mark.parametrize("count", [1, 7, 15, 16, 31])
def test_pack_holds_range_edges_and_phe_decrypts_the_slots(keys, count: int) -> None:
    from crypto.vector import pack, slots_per_ciphertext, unpack

    pk, sk = keys
    n, slot_bits = int(pk.n), 135
    per = slots_per_ciphertext(n, slot_bits)
    rng = np.random.default_rng(count)
    edges = [0, (1 << slot_bits) - 1, 1, 1 << (slot_bits - 1)]
    values = (edges + [int(rng.integers(0, 2**62)) << 70 for _ in range(count)])[:count]
    ev = EncryptedVector(pk, DJNEncryptor(pk).encrypt_ints(values), 0)
    packed = pack(ev, slot_bits)
    assert len(packed) == -(-count // per)
    plain = _phe_decrypt(sk, packed.ciphertexts)  # phe's own decryption of what travels
    assert unpack(plain, count, slot_bits, n) == values
    assert plain[0] == sum(v << (slot_bits * j) for j, v in enumerate(values[:per]))


def test_pack_refuses_slots_that_do_not_fit(keys) -> None:
    from crypto.errors import CryptoError
    from crypto.vector import pack, unpack

    pk, _ = keys
    ev = EncryptedVector(pk, DJNEncryptor(pk).encrypt_ints([1, 2]), 0)
    with pytest.raises(CryptoError, match="does not fit"):
        pack(ev, int(pk.n).bit_length())
    with pytest.raises(CryptoError, match="cannot hold"):
        unpack([1, 2], 3, 135, int(pk.n))
