r"""Encrypted fixed-point vectors: encrypt, ``Xᵀ[[e]]``, masks, decrypt, wire format.

One :class:`EncryptedVector` is a list of Paillier ciphertexts under one key,
all at the same fixed-point scale (``frac_bits``, see :mod:`crypto.codec`).
The hetero-LR step of DESIGN §4.1 uses, per party and batch:

1. :func:`encrypt_vector` — ``[[d]]`` under the owner's key;
2. :func:`xt_e` — ``[[Xᵀd]]`` with the receiver's plaintext features;
3. :func:`add_mask` — ``[[Xᵀd + r]]`` with ``r = draw_mask(...)``, then
   :func:`pack` (several masked entries per ciphertext) and :func:`rerandomize`;
4. :func:`decrypt_residues` by the key owner, and :func:`unpack` +
   :func:`unmask` by the sender.

Packing
-------
A masked entry is ~135 bits wide at batch 10,000 while a plaintext holds
``bits(n) − 1`` (2047 at 2048 bits), so :func:`pack` puts ``⌊(bits(n) − 1) /
w⌋`` entries of width ``w`` into one ciphertext, ``[[Σ_j v_j·2^(w·j)]]``, by
Horner's rule: ``w`` squarings mod n² per entry (≈ 1.1 ms at 2048 bits for
w = 135) instead of one CRT decryption per entry at the key owner (≈ 3 ms),
and one re-randomisation per ciphertext instead of per entry. Every value
must lie in ``[0, 2^w)``, so the sender adds an offset that makes the
unmasked value non-negative (see :mod:`federation.hetero_lr`); slots then
never carry into each other. The key owner still sees only masked values —
the same ones, side by side.

``Xᵀ[[e]]`` cost
---------------
Entry ``j`` is :math:`\prod_i [[e_i]]^{x_{ij}} \bmod n^2` with ``x_ij`` the
quantised features (~16–22-bit integers). A ``powmod`` per term costs about
``1.3·bits`` mulmods (~26 for 20 bits, ~130 µs at 2048 bits). The bucketed
(Pippenger-style) method of :func:`crypto.pool.multiexp` cuts each exponent
into ``c``-bit windows; per window every term costs *one* mulmod into the
bucket of its digit, and the buckets are combined in ``2·2^c`` mulmods
independent of the number of terms. ``c`` is chosen per column from the
actual exponents by a cost model: for 20,000 rows of N(0,1) features at 16
bits (≤ 19 bits, a few up to 22) it picks ``c = 9`` and for uniform 22-bit
exponents ``c = 11`` — either way two windows carry the digits, about 2.3
mulmods (~12 µs at 2048 bits, ~10× below per-term ``powmod``) per term. Negative
entries are collected separately (same method on ``|x|``) and joined with
one modular inverse per column; zeros cost nothing; an all-zero column is the
ciphertext ``1``, which decrypts to 0.

Privacy note: ``Xᵀ[[e]]`` and a plaintext mask are deterministic functions of
the inputs, so the ciphertext randomness of ``[[Xᵀd + r]]`` is
:math:`\prod_i \rho_i^{x_{ij}}` where the key owner chose the :math:`\rho_i`.
A key owner can recover that randomness with its private key and test
guesses about ``X``; call :func:`rerandomize` on anything that goes back to
the key owner.

Wire format
-----------
:func:`to_wire` gives a ``uint8`` array of shape ``(len, bytes(n²))`` — each
ciphertext big-endian at fixed width (512 bytes at 2048 bits) — and metadata
``{"fingerprint", "frac_bits"}``. No pickle and no JSON lists of big
integers: the array travels as-is in a Flower ``ArrayRecord``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gmpy2
import numpy as np
from gmpy2 import mpz
from phe import PaillierPrivateKey, PaillierPublicKey

from crypto.codec import FixedPointCodec
from crypto.errors import CryptoError, KeyMismatchError
from crypto.paillier import (
    DJNEncryptor,
    check_same_key,
    decrypt_ints,
    key_fingerprint,
)
from crypto.pool import (
    EncryptionParams,
    PoolArg,
    block_to_ints,
    byte_width,
    chunk_bounds,
    ints_to_block,
    random_factors,
    resolve_pool,
    run_chunks,
    signed_column_products,
    task_columns,
)

__all__ = [
    "EncryptedVector",
    "add_mask",
    "decrypt_residues",
    "decrypt_vector",
    "draw_mask",
    "encrypt_vector",
    "from_wire",
    "pack",
    "rerandomize",
    "residues_from_wire",
    "residues_to_wire",
    "to_wire",
    "slots_per_ciphertext",
    "unmask",
    "unpack",
    "xt_e",
]

_X_LIMIT = 1 << 62


@dataclass(frozen=True)
class EncryptedVector:
    """Paillier ciphertexts under one key, all at one fixed-point scale.

    Attributes
    ----------
    public_key : PaillierPublicKey
        The key every ciphertext is under.
    ciphertexts : list of gmpy2.mpz
        Residues in ``[1, n²)``.
    frac_bits : int
        Fixed-point scale of the plaintexts (codec bits, plus feature bits
        after :func:`xt_e`).
    """

    public_key: PaillierPublicKey
    ciphertexts: list[mpz]
    frac_bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.frac_bits, int) or self.frac_bits < 0:
            raise CryptoError(f"frac_bits must be a non-negative int, got {self.frac_bits!r}")

    def __len__(self) -> int:
        return len(self.ciphertexts)

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the key (see :func:`crypto.paillier.key_fingerprint`)."""
        return key_fingerprint(self.public_key)


# --------------------------------------------------------------------------- encrypt / decrypt
def encrypt_vector(
    encryptor: DJNEncryptor,
    values: np.ndarray,
    codec: FixedPointCodec,
    *,
    pool: PoolArg = None,
) -> EncryptedVector:
    """Encode real values with ``codec`` and encrypt them under ``encryptor``'s key.

    Parameters
    ----------
    encryptor : DJNEncryptor
        Encryptor of the key owner (its precomputed randomness is used first).
    values : np.ndarray
        Real values (any shape, flattened; float64, float32 or integers).
    codec : FixedPointCodec
        The fixed-point codec; its ``frac_bits`` becomes the vector's scale.
    pool : Executor, "auto" or None
        Process pool; results decrypt identically without one.

    Raises
    ------
    CodecError
        On NaN/inf/out-of-range values, or a codec range too close to ``n``.
    """
    n = int(encryptor.public_key.n)
    codec.check_modulus(n)
    ms = [m % n for m in codec.encode(values)]
    return EncryptedVector(encryptor.public_key, encryptor.encrypt_ints(ms, pool=pool),
                           codec.frac_bits)


def decrypt_residues(private_key: PaillierPrivateKey, ev: EncryptedVector) -> list[int]:
    """Raw plaintexts in ``[0, n)`` (for masked values, which only the mask owner decodes).

    Raises
    ------
    KeyMismatchError
        If ``ev`` is under another key than ``private_key``'s.
    """
    check_same_key(private_key.public_key, ev.public_key, "decrypting a vector")
    return decrypt_ints(private_key, ev.ciphertexts)


def decrypt_vector(
    private_key: PaillierPrivateKey, ev: EncryptedVector, codec: FixedPointCodec
) -> np.ndarray:
    """Decrypt and decode to float64 at ``ev.frac_bits`` (raises on overflow)."""
    residues = decrypt_residues(private_key, ev)
    return codec.decode(residues, int(ev.public_key.n), ev.frac_bits)


# --------------------------------------------------------------------------- Xᵀ[[e]]
def _check_quantised(X_q: np.ndarray, rows: int) -> np.ndarray:
    """Return ``X_q`` as a C-contiguous int64 matrix with ``rows`` rows, or raise."""
    X = np.asarray(X_q)
    if X.ndim != 2:
        raise CryptoError(f"X_q must be 2-D (rows × features), got shape {X.shape}")
    if X.dtype.kind not in "iu":
        raise CryptoError(
            f"X_q has dtype {X.dtype}; quantise features first with "
            "crypto.codec.quantise_features (int64)"
        )
    if X.shape[0] != rows:
        raise CryptoError(
            f"X_q has {X.shape[0]} rows but the encrypted vector has {rows} entries; "
            "select the same batch rows on both sides"
        )
    if X.size and (int(X.max()) >= _X_LIMIT or int(X.min()) <= -_X_LIMIT):
        raise CryptoError("X_q entries must stay below 2^62 in magnitude")
    return np.ascontiguousarray(X, dtype=np.int64)


def xt_e(
    X_q: np.ndarray, x_frac_bits: int, ev: EncryptedVector, *, pool: PoolArg = None,
    group_equal: bool = True,
) -> EncryptedVector:
    """``[[Xᵀe]]``: one ciphertext per column of the plaintext integer matrix ``X_q``.

    Parameters
    ----------
    X_q : np.ndarray of int64, shape (rows, features)
        Quantised features (:func:`crypto.codec.quantise_features`).
    x_frac_bits : int
        Fractional bits used to quantise ``X_q``.
    ev : EncryptedVector
        ``[[e]]`` of length ``rows``.
    pool : Executor, "auto" or None
        Rows are split into one chunk per worker; each worker returns its
        partial column products, joined here. Results are bit-identical.
    group_equal : bool, default True
        Merge the ciphertexts of rows sharing a feature value first (one
        mulmod per term; :func:`crypto.pool.multiexp`), when the cost model
        says it pays — binned and categorical columns. ``False`` only for
        before/after benchmarks; the result is bit-identical either way.

    Returns
    -------
    EncryptedVector
        Length ``features``, ``frac_bits = ev.frac_bits + x_frac_bits``.
    """
    if not isinstance(x_frac_bits, int) or x_frac_bits < 0:
        raise CryptoError(f"x_frac_bits must be a non-negative int, got {x_frac_bits!r}")
    X = _check_quantised(X_q, len(ev))
    rows, cols = X.shape
    nsq = mpz(ev.public_key.n) ** 2
    executor = resolve_pool(pool)
    bounds = chunk_bounds(rows, executor)
    if executor is None or len(bounds) <= 1:
        parts = [signed_column_products(ev.ciphertexts, X, nsq, group_equal=group_equal)]
    else:
        width = byte_width(nsq)
        results = run_chunks(
            executor,
            task_columns,
            [(int(nsq), ints_to_block(ev.ciphertexts[lo:hi], width), width,
              X[lo:hi].tobytes(), cols, group_equal) for lo, hi in bounds],
        )
        parts = [(block_to_ints(pos, width), block_to_ints(neg, width))
                 for pos, neg in results]
    out = []
    for j in range(cols):
        positive, negative = mpz(1), mpz(1)
        for pos, neg in parts:
            positive = positive * pos[j] % nsq
            negative = negative * neg[j] % nsq
        if negative != 1:
            positive = positive * gmpy2.invert(negative, nsq) % nsq
        out.append(positive)
    return EncryptedVector(ev.public_key, out, ev.frac_bits + x_frac_bits)


# --------------------------------------------------------------------------- masks
def draw_mask(count: int, bits: int) -> list[int]:
    """``count`` fresh integers uniform in ``[0, 2**bits)`` from ``secrets``.

    With ``bits = max_plain_bits(...) + σ`` a masked value ``s + r`` is within
    statistical distance ``2**-σ`` of uniform whatever ``s`` is. Every call
    draws new values; never reuse a mask across steps.
    """
    if count < 0 or bits < 1:
        raise CryptoError(f"draw_mask needs count >= 0 and bits >= 1, got {count}, {bits}")
    return [secrets.randbits(bits) for _ in range(count)]


def add_mask(ev: EncryptedVector, mask: Sequence[int]) -> EncryptedVector:
    """``[[v + mask]]``: add plaintext integers homomorphically (exact, no randomness).

    ``c·(1 + m·n) ≡ c + n·(m·c mod n)  (mod n²)``. ``mask`` entries may be
    negative; they are reduced modulo ``n``. The result has the same
    ``frac_bits``; the mask is an integer at that scale. See
    :func:`rerandomize` before sending the result to the key owner.
    """
    if len(mask) != len(ev):
        raise CryptoError(f"mask has {len(mask)} entries but the vector has {len(ev)}")
    n = mpz(ev.public_key.n)
    nsq = n * n
    out = []
    for c, m in zip(ev.ciphertexts, mask, strict=True):
        c = mpz(c)
        s = c + n * (mpz(int(m) % n) * c % n)
        out.append(s - nsq if s >= nsq else s)
    return EncryptedVector(ev.public_key, out, ev.frac_bits)


def rerandomize(ev: EncryptedVector, encryptor: DJNEncryptor | None = None) -> EncryptedVector:
    """Multiply every ciphertext by a fresh encryption of zero (same plaintexts).

    Why: after :func:`xt_e` and :func:`add_mask` a ciphertext's randomness is
    a known function of the key owner's own randomness and our features, so
    the key owner could test guesses about them. Fresh randomness removes
    that. With an ``encryptor`` for ``ev``'s key its (pooled) DJN factors are
    used; without one, full ``r^n`` factors (~10 ms each at 2048 bits, fine
    for the ~20 entries of a gradient).
    """
    if encryptor is not None:
        check_same_key(ev.public_key, encryptor.public_key, "rerandomizing with an encryptor")
        factors = encryptor.take_factors(len(ev))
    else:
        factors = random_factors(EncryptionParams(int(ev.public_key.n), "phe", 0, 0, 1),
                                 len(ev))
    nsq = mpz(ev.public_key.n) ** 2
    out = [mpz(c) * r % nsq for c, r in zip(ev.ciphertexts, factors, strict=True)]
    return EncryptedVector(ev.public_key, out, ev.frac_bits)


def slots_per_ciphertext(n: int, slot_bits: int) -> int:
    """How many ``slot_bits``-wide values :func:`pack` puts in one plaintext below ``n``."""
    per = (int(n).bit_length() - 1) // slot_bits
    if slot_bits < 1 or per < 1:
        raise CryptoError(f"a {slot_bits}-bit slot does not fit a plaintext of a "
                          f"{int(n).bit_length()}-bit key")
    return per


def pack(ev: EncryptedVector, slot_bits: int) -> EncryptedVector:
    """``[[Σ_j v_j·2^(slot_bits·j)]]`` per run of consecutive entries (see "Packing").

    Each plaintext ``v_j`` must be in ``[0, 2^slot_bits)`` — the caller's
    guarantee (a value outside would carry into the next slot and corrupt
    it, silently). Entry ``j`` of a run lands in slot ``j`` (lowest bits
    first); the last ciphertext may hold fewer. Exact and deterministic:
    :func:`rerandomize` the result before it leaves.
    """
    n = mpz(ev.public_key.n)
    nsq = n * n
    per = slots_per_ciphertext(n, slot_bits)
    shift = mpz(1) << slot_bits
    out = []
    for start in range(0, len(ev.ciphertexts), per):
        run = [mpz(c) for c in ev.ciphertexts[start:start + per]]
        acc = run[-1]
        for c in reversed(run[:-1]):
            acc = gmpy2.powmod(acc, shift, nsq) * c % nsq
        out.append(acc)
    return EncryptedVector(ev.public_key, out, ev.frac_bits)


def unpack(residues: Sequence[int], count: int, slot_bits: int, n: int) -> list[int]:
    """The ``count`` slot values of decrypted :func:`pack` output, in the original order."""
    per = slots_per_ciphertext(n, slot_bits)
    if len(residues) != -(-count // per):
        raise CryptoError(f"{len(residues)} packed residues cannot hold {count} values of "
                          f"{slot_bits} bits ({per} per ciphertext)")
    low = (1 << slot_bits) - 1
    values = [(int(r) >> (slot_bits * j)) & low for r in residues for j in range(per)]
    return values[:count]


def unmask(
    residues: Sequence[int], mask: Sequence[int], n: int, frac_bits: int,
    codec: FixedPointCodec,
) -> np.ndarray:
    """Decode ``(residue − mask) mod n`` at ``frac_bits``: the mask owner's last step."""
    if len(residues) != len(mask):
        raise CryptoError(f"{len(residues)} residues but {len(mask)} mask entries")
    n = int(n)
    return codec.decode([(int(r) - int(m)) % n for r, m in zip(residues, mask, strict=True)],
                        n, frac_bits)


# --------------------------------------------------------------------------- wire format
def _check_wire_array(array: np.ndarray, width: int, what: str) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 2:
        got = (f"{type(array).__name__}" if not isinstance(array, np.ndarray)
               else f"{array.dtype} array of shape {array.shape}")
        raise CryptoError(f"{what} must be a 2-D uint8 array, got {got}")
    if array.shape[1] != width:
        raise CryptoError(
            f"{what} rows are {array.shape[1]} bytes wide, expected {width} for this key; "
            "the array was produced under a key of another size or was damaged"
        )
    return np.ascontiguousarray(array)


def to_wire(ev: EncryptedVector) -> tuple[np.ndarray, dict[str, str | int]]:
    """Fixed-width bytes of ``ev`` plus ``{"fingerprint", "frac_bits"}`` metadata."""
    width = byte_width(int(ev.public_key.n) ** 2)
    block = ints_to_block(ev.ciphertexts, width)
    array = np.frombuffer(bytearray(block), dtype=np.uint8).reshape(len(ev), width)
    return array, {"fingerprint": ev.fingerprint, "frac_bits": ev.frac_bits}


def from_wire(
    array: np.ndarray, meta: Mapping[str, object], public_key: PaillierPublicKey
) -> EncryptedVector:
    """Parse :func:`to_wire` output, refusing ciphertexts under another key.

    Raises
    ------
    KeyMismatchError
        If ``meta["fingerprint"]`` is not ``public_key``'s fingerprint.
    CryptoError
        On missing metadata, a wrong dtype/shape/width, or a ciphertext
        outside ``[1, n²)``.
    """
    if "fingerprint" not in meta or "frac_bits" not in meta:
        raise CryptoError("ciphertext metadata must contain 'fingerprint' and 'frac_bits'")
    expected = key_fingerprint(public_key)
    if meta["fingerprint"] != expected:
        raise KeyMismatchError(
            f"ciphertexts are under key {meta['fingerprint']}, but key {expected} was "
            "expected; the sender used another party's key (or a stale key)"
        )
    frac_bits = meta["frac_bits"]
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int | np.integer):
        raise CryptoError(f"metadata frac_bits must be an int, got {frac_bits!r}")
    nsq = mpz(public_key.n) ** 2
    width = byte_width(nsq)
    data = _check_wire_array(array, width, "ciphertext array")
    cts = block_to_ints(data.tobytes(), width)
    for i, c in enumerate(cts):
        if not 0 < c < nsq:
            raise CryptoError(
                f"ciphertext at index {i} is outside [1, n²) for key {expected}; the payload "
                "is damaged or forged"
            )
    return EncryptedVector(public_key, cts, int(frac_bits))


def residues_to_wire(residues: Sequence[int], n: int) -> np.ndarray:
    """Decrypted (masked) residues in ``[0, n)`` as a ``(len, bytes(n))`` uint8 array."""
    n = int(n)
    width = byte_width(n)
    for i, r in enumerate(residues):
        if not 0 <= r < n:
            raise CryptoError(f"residue at index {i} is outside [0, n)")
    block = ints_to_block(residues, width)
    return np.frombuffer(bytearray(block), dtype=np.uint8).reshape(len(residues), width)


def residues_from_wire(array: np.ndarray) -> list[int]:
    """Inverse of :func:`residues_to_wire` (the width is taken from the array)."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 2:
        raise CryptoError("residue array must be a 2-D uint8 array (rows × bytes(n))")
    width = array.shape[1]
    if width == 0:
        if array.shape[0]:
            raise CryptoError("residue array has rows of zero bytes")
        return []
    return [int(v) for v in block_to_ints(np.ascontiguousarray(array).tobytes(), width)]
