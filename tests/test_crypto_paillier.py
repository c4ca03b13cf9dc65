"""Paillier layer: keys, DJN encryption, fixed-point codec, Xᵀ[[e]], masks, wire format.

All keys here are 1024-bit and created with ``test_only=True``: that size is
for fast unit tests only and is refused for real data (see
``test_key_size_policy``).
"""

from __future__ import annotations

import json
import pickle
from fractions import Fraction

import numpy as np
import pytest
from gmpy2 import mpz

from crypto import pool as crypto_pool
from crypto.codec import FixedPointCodec, max_plain_bits, quantise_features
from crypto.errors import CodecError, CryptoError, InsecureKeyError, KeyMismatchError
from crypto.paillier import (
    DJNEncryptor,
    decrypt_ints,
    generate_keypair,
    key_fingerprint,
    private_key_from_json,
    private_key_to_json,
    public_key_from_bytes,
    public_key_to_bytes,
)
from crypto.vector import (
    EncryptedVector,
    add_mask,
    decrypt_residues,
    decrypt_vector,
    draw_mask,
    encrypt_vector,
    from_wire,
    rerandomize,
    residues_from_wire,
    residues_to_wire,
    to_wire,
    unmask,
    xt_e,
)

TEST_BITS = 1024  # test-only key size: never for real data
X_FRAC = 16


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(TEST_BITS, test_only=True)


@pytest.fixture(scope="module")
def other_keys():
    return generate_keypair(TEST_BITS, test_only=True)


@pytest.fixture(scope="module")
def encryptor(keys):
    return DJNEncryptor(keys[0])


@pytest.fixture(scope="module")
def codec():
    return FixedPointCodec()


@pytest.fixture(scope="module")
def process_pool():
    """The real module pool with two workers, shut down afterwards."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CREDITLAB_CRYPTO_WORKERS", "2")
    crypto_pool.shutdown_pool()
    pool = crypto_pool.get_pool()
    assert pool is not None
    yield pool
    crypto_pool.shutdown_pool()
    mp.undo()


def exact_xt_v(X_q: np.ndarray, v_enc: list[int]) -> list[int]:
    """Xᵀv in exact Python integers (the ground truth of the homomorphic product)."""
    return [sum(int(x) * m for x, m in zip(X_q[:, j].tolist(), v_enc, strict=True))
            for j in range(X_q.shape[1])]


# --------------------------------------------------------------------------- keys
def test_key_size_policy():
    with pytest.raises(InsecureKeyError, match="test_only=True"):
        generate_keypair(1024)
    with pytest.raises(InsecureKeyError):
        generate_keypair(512, test_only=True)


def test_generated_key_is_blum_of_exact_size(keys):
    pk, sk = keys
    assert pk.n.bit_length() == TEST_BITS
    assert sk.p * sk.q == pk.n
    assert sk.p % 4 == 3 and sk.q % 4 == 3
    fp = key_fingerprint(pk)
    assert len(fp) == 32 and int(fp, 16) >= 0


def test_key_storage_round_trips(keys):
    pk, sk = keys
    pk2, sk2 = private_key_from_json(private_key_to_json(sk), test_only=True)
    assert pk2.n == pk.n and {sk2.p, sk2.q} == {sk.p, sk.q}
    assert public_key_from_bytes(public_key_to_bytes(pk), test_only=True).n == pk.n
    with pytest.raises(InsecureKeyError):
        public_key_from_bytes(public_key_to_bytes(pk))
    damaged = json.loads(private_key_to_json(sk))
    damaged["p"] = format(sk.p + 2, "x")
    with pytest.raises(CryptoError):
        private_key_from_json(json.dumps(damaged), test_only=True)
    with pytest.raises(CryptoError, match="header"):
        public_key_from_bytes(b"XXXX" + public_key_to_bytes(pk)[4:], test_only=True)


# --------------------------------------------------------------------------- encryption
def test_djn_ciphertexts_decrypt_with_phe_raw_decrypt(keys, encryptor):
    pk, sk = keys
    n = pk.n
    ms = [0, 1, 2, 12345, n // 2, n - 1] + [int(mpz(i) * 7919**9 % n) for i in range(10)]
    cts = encryptor.encrypt_ints(ms)
    assert all(0 < c < n * n for c in cts)
    assert [sk.raw_decrypt(int(c)) for c in cts] == ms
    assert decrypt_ints(sk, cts) == ms
    # Probabilistic: the same plaintext never gives the same ciphertext.
    assert len({int(c) for c in encryptor.encrypt_ints([5] * 20)}) == 20
    with pytest.raises(CryptoError, match="outside"):
        encryptor.encrypt_ints([n])


def test_phe_method_and_exponent_policy(keys):
    pk, sk = keys
    plain = DJNEncryptor(pk, method="phe")
    assert [sk.raw_decrypt(int(c)) for c in plain.encrypt_ints([3, 0, pk.n - 5])] == [
        3, 0, pk.n - 5]
    assert DJNEncryptor(pk).exponent_bits == 160  # 2·λ with λ = 80 for 1024 bits
    assert DJNEncryptor(generate_keypair(2048)[0]).exponent_bits == 224
    with pytest.raises(InsecureKeyError):
        DJNEncryptor(pk, exponent_bits=100)


def test_randomness_pool_is_bounded_and_single_use(keys):
    pk, sk = keys
    enc = DJNEncryptor(pk, pool_size=8)
    assert enc.refill(5) == 5 and enc.available == 5
    assert enc.refill() == 3 and enc.available == 8  # never beyond pool_size
    assert enc.refill(4) == 0
    copy = pickle.loads(pickle.dumps(enc))
    assert copy.available == 0  # a copy never replays one-time randomness
    pooled = list(enc._ready)
    cts = enc.encrypt_ints([0] * 6)
    assert enc.available == 2
    assert cts == pooled[:6]  # encryptions of 0 are exactly the factors, in order
    more = enc.encrypt_ints([0] * 4)  # 2 pooled + 2 fresh
    assert enc.available == 0
    assert more[:2] == pooled[6:]
    assert len({int(c) for c in cts + more}) == 10
    assert decrypt_ints(sk, copy.encrypt_ints([42])) == [42]


# --------------------------------------------------------------------------- codec
def test_vector_round_trip_including_edges(keys, encryptor, codec):
    pk, sk = keys
    rng = np.random.default_rng(1)
    v = np.concatenate([
        rng.normal(scale=5.0, size=200), [0.0, -0.0, 1e-12, -3.5, codec.max_abs,
                                          -codec.max_abs, 2.0**-33, 0.25 * 7 + 0.5 - 1],
    ])
    ev = encrypt_vector(encryptor, v, codec)
    assert len(ev) == v.size and ev.frac_bits == 32 and ev.fingerprint == key_fingerprint(pk)
    back = decrypt_vector(sk, ev, codec)
    assert back.dtype == np.float64
    assert np.max(np.abs(back - v)) <= codec.precision / 2
    assert back[-4] == codec.max_abs and back[-3] == -codec.max_abs and back[-7] == 0.0


def test_float32_int64_and_2d_inputs(keys, encryptor, codec):
    pk, sk = keys
    f32 = np.array([[1.5, -2.25], [3.0e-3, -7.0]], dtype=np.float32)
    back = decrypt_vector(sk, encrypt_vector(encryptor, f32, codec), codec)
    np.testing.assert_allclose(back, f32.astype(np.float64).ravel(), atol=codec.precision)
    i64 = np.array([0, -1, 2**39, -(2**40)], dtype=np.int64)
    assert decrypt_vector(sk, encrypt_vector(encryptor, i64, codec), codec).tolist() == [
        0.0, -1.0, 2.0**39, -(2.0**40)]
    assert codec.encode(np.array([0.5, -0.5, 1.5])) == [2**31, -(2**31), 3 * 2**31]


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        (np.array([1.0, np.nan]), r"index 1 is nan"),
        (np.array([[0.0, 1.0], [np.inf, 2.0]]), r"index \(1, 0\) is inf"),
        (np.array([0.0, -np.inf]), r"index 1 is -inf"),
        (np.array([0.0, 0.0, 2.0**41]), r"index 2 is 2199023255552\.0.*±1099511627776"),
        (np.array([2**41], dtype=np.int64), r"index 0 is 2199023255552"),
        (np.array([True, False]), r"dtype bool"),
    ],
)
def test_codec_refuses_bad_values(codec, values, pattern):
    with pytest.raises(CodecError, match=pattern):
        codec.encode(values)


def test_decode_detects_wrap_around(keys, codec):
    pk, _ = keys
    n = pk.n
    assert codec.decode([n - 2**32, 2**33], n).tolist() == [-1.0, 2.0]
    with pytest.raises(CodecError, match="overflowed"):
        codec.decode([n // 2], n)
    with pytest.raises(CodecError, match="overflowed"):
        codec.decode([(codec.max_int + 1) % n], n)
    with pytest.raises(CodecError, match=r"not in \[0, n\)"):
        codec.decode([n], n)


def test_quantise_features_and_mask_bound():
    X = np.array([[1.0, -2.5], [0.0, 3.0e-6]])
    assert quantise_features(X).tolist() == [[65536, -163840], [0, 0]]
    assert quantise_features(X).dtype == np.int64
    with pytest.raises(CodecError, match=r"index \(0, 1\)"):
        quantise_features(np.array([[0.0, np.nan]]))
    with pytest.raises(CodecError, match="outside"):
        quantise_features(np.array([[2000.0]]), max_abs=1024.0)
    # The bound holds for the worst case the codec allows, rounding included.
    rows, fmax, vmax, fx, fv = 3, 1024.0, 2.0**40, 16, 32
    bits = max_plain_bits(rows, fmax, vmax, fx + fv)
    worst = rows * int(quantise_features(np.array([fmax]), fx, max_abs=fmax)[0]) * (
        FixedPointCodec(fv, vmax).max_int)
    assert worst < 2**bits and bits == (rows * 2**(10 + 40 + 48)).bit_length() + 2
    assert max_plain_bits(1, 1.0, 1.0, 0) == 3


# --------------------------------------------------------------------------- Xᵀ[[e]]
def test_xt_e_matches_plaintext_product(keys, encryptor, codec):
    pk, sk = keys
    rng = np.random.default_rng(2)
    rows = 300
    X = rng.normal(scale=3.0, size=(rows, 5))
    X[:, 1] = 0.0  # all-zero column
    X[:, 2] = np.where(rng.random(rows) < 0.5, 0.0, X[:, 2])  # sparse column
    X[:, 3] = rng.choice([-1000.0, 1000.0, -0.0001], size=rows)  # large and tiny values
    X[:, 4] = -np.abs(X[:, 4])  # only negative entries
    v = rng.normal(scale=4.0, size=rows)
    v[:3] = [0.0, 1e6, -1e6]
    X_q = quantise_features(X, X_FRAC, max_abs=1024.0)
    ev = encrypt_vector(encryptor, v, codec)
    product = xt_e(X_q, X_FRAC, ev)
    assert len(product) == 5 and product.frac_bits == 32 + X_FRAC
    decoded = decrypt_vector(sk, product, codec)
    # Exact: the homomorphic product equals the integer product of the encodings.
    expected = exact_xt_v(X_q, codec.encode(v))
    assert decoded.tolist() == [float(Fraction(e, 2 ** (32 + X_FRAC))) for e in expected]
    assert decoded[1] == 0.0
    # And within the codec's stated precision of the real product.
    tol = rows * (np.max(np.abs(X)) * codec.precision / 2 + np.max(np.abs(v)) * 2.0**-17)
    np.testing.assert_allclose(decoded, X.T @ v, rtol=0, atol=tol)


def test_xt_e_edge_shapes(keys, encryptor, codec):
    pk, sk = keys
    ev = encrypt_vector(encryptor, np.array([-2.5]), codec)
    one_row = xt_e(np.array([[3 << X_FRAC, 0, -(1 << X_FRAC)]], dtype=np.int64), X_FRAC, ev)
    assert decrypt_vector(sk, one_row, codec).tolist() == [-7.5, 0.0, 2.5]
    assert one_row.ciphertexts[1] == 1  # all-zero column: the trivial encryption of 0
    with pytest.raises(CryptoError, match="rows"):
        xt_e(np.zeros((2, 3), dtype=np.int64), X_FRAC, ev)
    with pytest.raises(CryptoError, match="quantise"):
        xt_e(np.zeros((1, 3)), X_FRAC, ev)


def test_background_randomness_is_bounded_single_use_and_decrypts(keys, process_pool):
    """Factors started while a party waits feed its next encryption, each used once."""
    pk, sk = keys
    enc = DJNEncryptor(pk, private_key=sk, pool_size=300)
    assert enc.refill_in_background(250, pool=process_pool) == 250
    assert enc.in_flight == 250 and enc.available == 0  # returned before they were done
    assert enc.refill_in_background(pool=process_pool) == 50  # never beyond pool_size
    assert enc.refill_in_background(pool=process_pool) == 0
    assert pickle.loads(pickle.dumps(enc)).in_flight == 0  # a copy replays nothing
    values = list(range(-200, 200))
    cts = enc.encrypt_ints([v % pk.n for v in values])  # 300 precomputed + 100 fresh
    assert enc.in_flight == 0 and enc.available == 0
    assert len({int(c) for c in cts}) == len(cts)
    assert [sk.raw_decrypt(int(c)) for c in cts] == [v % pk.n for v in values]  # phe decrypts
    assert DJNEncryptor(pk).refill_in_background(10, pool=None) == 0  # no pool: nothing


def test_pool_and_no_pool_agree(keys, encryptor, codec, process_pool):
    pk, sk = keys
    rng = np.random.default_rng(3)
    rows = 400
    X_q = quantise_features(rng.normal(scale=2.0, size=(rows, 3)))
    v = rng.normal(size=rows)
    ev = encrypt_vector(encryptor, v, codec)
    serial = xt_e(X_q, X_FRAC, ev)
    parallel = xt_e(X_q, X_FRAC, ev, pool=process_pool)
    assert parallel.ciphertexts == serial.ciphertexts  # bit-identical
    ev_pool = encrypt_vector(encryptor, v, codec, pool="auto")
    assert ev_pool.ciphertexts != ev.ciphertexts  # fresh randomness...
    np.testing.assert_array_equal(decrypt_vector(sk, ev_pool, codec),
                                  decrypt_vector(sk, ev, codec))  # ...same plaintexts
    fresh = DJNEncryptor(pk, pool_size=100)
    assert fresh.refill(100, pool=process_pool) == 100
    assert decrypt_ints(sk, fresh.encrypt_ints([7] * 100)) == [7] * 100
    # Workers import only the kernels: no phe, no Flower, Ray or torch.
    modules = process_pool.submit(eval, "sorted(__import__('sys').modules)").result()
    assert "crypto.pool" in modules and "gmpy2" in modules
    assert not {"phe", "crypto.paillier", "flwr", "ray", "torch"} & set(modules)


def test_pool_disabled_by_env(monkeypatch):
    monkeypatch.setenv("CREDITLAB_CRYPTO_WORKERS", "0")
    assert crypto_pool.get_pool() is None
    monkeypatch.setenv("CREDITLAB_CRYPTO_WORKERS", "many")
    with pytest.raises(CryptoError, match="CREDITLAB_CRYPTO_WORKERS"):
        crypto_pool.get_pool()


# --------------------------------------------------------------------------- masks
def test_masks_are_fresh_and_unmask_recovers(keys, encryptor, codec):
    pk, sk = keys
    a, b = draw_mask(8, 128), draw_mask(8, 128)
    assert a != b and all(0 <= m < 2**128 for m in a + b)
    assert all(0 <= m < 8 for m in draw_mask(200, 3))
    v = np.array([-3.25, 0.0, 17.5])
    X_q = np.array([[1 << X_FRAC, -(2 << X_FRAC)], [5, 0], [0, 1 << X_FRAC]], dtype=np.int64)
    product = xt_e(X_q, X_FRAC, encrypt_vector(encryptor, v, codec))
    mask = draw_mask(2, max_plain_bits(3, 2.0, 20.0, 32 + X_FRAC) + 40)
    masked = rerandomize(add_mask(product, mask), encryptor)
    assert masked.ciphertexts != add_mask(product, mask).ciphertexts
    residues = decrypt_residues(sk, masked)
    n = pk.n
    plain = codec.decode(decrypt_residues(sk, product), n, product.frac_bits)
    assert residues != [int(x) for x in decrypt_residues(sk, product)]  # masked
    recovered = unmask(residues, mask, n, masked.frac_bits, codec)
    np.testing.assert_array_equal(recovered, plain)
    assert recovered.tolist() == [-3.25, 6.5 + 17.5]
    # Negative plaintext masks are reduced modulo n; rerandomize without an encryptor works.
    shifted = rerandomize(add_mask(product, [-(1 << 48), 0]))
    assert decrypt_vector(sk, shifted, codec).tolist() == [-4.25, 24.0]
    with pytest.raises(CryptoError):
        add_mask(product, [1])


# --------------------------------------------------------------------------- wire
def test_wire_round_trip_and_refusals(keys, other_keys, encryptor, codec):
    pk, sk = keys
    ev = encrypt_vector(encryptor, np.array([1.0, -2.0, 0.0]), codec)
    array, meta = to_wire(ev)
    assert array.dtype == np.uint8 and array.shape == (3, 256)
    assert meta == {"fingerprint": key_fingerprint(pk), "frac_bits": 32}
    back = from_wire(array, meta, pk)
    assert back == ev and isinstance(back, EncryptedVector)
    assert decrypt_vector(sk, back, codec).tolist() == [1.0, -2.0, 0.0]

    other_pk, other_sk = other_keys
    with pytest.raises(KeyMismatchError) as info:
        from_wire(array, meta, other_pk)
    assert key_fingerprint(pk) in str(info.value) and key_fingerprint(other_pk) in str(
        info.value)
    with pytest.raises(KeyMismatchError):
        decrypt_vector(other_sk, ev, codec)
    with pytest.raises(CryptoError, match="256"):
        from_wire(array[:, :200], meta, pk)
    with pytest.raises(CryptoError, match="uint8"):
        from_wire(array.astype(np.int16), meta, pk)
    too_big = array.copy()
    too_big[1, :] = 255
    with pytest.raises(CryptoError, match="index 1"):
        from_wire(too_big, meta, pk)

    empty_array, empty_meta = to_wire(EncryptedVector(pk, [], 32))
    assert empty_array.shape == (0, 256) and len(from_wire(empty_array, empty_meta, pk)) == 0

    residues = [0, 1, pk.n - 1]
    wire = residues_to_wire(residues, pk.n)
    assert wire.shape == (3, 128) and residues_from_wire(wire) == residues
    with pytest.raises(CryptoError):
        residues_to_wire([pk.n], pk.n)
    with pytest.raises(CryptoError):
        residues_from_wire(wire.astype(np.int64))
