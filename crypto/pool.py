"""Batch kernels of the Paillier layer and the process pool that runs them.

Why one module: everything a worker process executes lives here, and this
module imports only ``gmpy2``, ``numpy`` and :mod:`crypto.errors`. A worker
therefore never imports ``phe``, Flower, Ray or torch, starts in well under a
second, and the same functions run in-process when no pool is used, which is
why pool and no-pool results are identical.

Kernels
-------
* :class:`FixedBaseTable` — fixed-base windowed exponentiation (Brickell,
  Gordon, McCurley & Wilson, EUROCRYPT '92): ``h^a`` for a short ``a`` as a
  product of ``ceil(bits / w)`` table entries, i.e. only mulmods.
* :func:`encrypt_with_factors` — ``(1 + m·n)·r mod n²`` computed as
  ``r + n·(m·r mod n)``: one multiplication modulo ``n`` instead of ``n²``.
* :class:`CRTFixedBaseTable` — the same powers computed modulo ``p²`` and
  ``q²`` and joined by CRT, for a key owner encrypting under its own key
  (≈1.3–1.6× faster at 2048 bits, measured in ``bench/lr_fit``).
* :func:`multiexp` / :func:`signed_column_products` — bucketed
  (Pippenger-style) multi-exponentiation ``∏ c_i^{e_i} mod n²`` for ``Xᵀ[[e]]``;
  bases sharing an exponent (binned, categorical and count columns) are
  first merged with one mulmod each, so such columns cost sums only.
* :func:`crt_decrypt` / :func:`decrypt_batch` — Paillier CRT decryption from
  the key's factors (the math of :func:`crypto.paillier.decrypt_ints`), so a
  key owner can spread a large decryption over its own workers.

Pool
----
:func:`get_pool` lazily creates one module-level
``ProcessPoolExecutor`` over all usable cores with the ``spawn`` start method
— never ``fork``, because this code runs inside Ray actor processes whose
threads and sockets must not be duplicated. Workers are launched without
re-importing the parent's ``__main__`` (see :func:`_without_main_module`), so
a worker imports only this module, ``gmpy2`` and ``numpy`` — not Ray, Flower
or torch. ``CREDITLAB_CRYPTO_WORKERS`` overrides the worker count (``0``
disables the pool). Work is shipped as one bytes block per worker chunk, with
the key parameters sent once per chunk; a worker caches the fixed-base table
for the key it last saw, so the table is built once per worker, not per call.
Note that both parties of a simulation each own such a pool when they run in
separate processes; on a 2-core machine set ``CREDITLAB_CRYPTO_WORKERS`` so
the total matches the cores.

Ray
---
A party whose crypto outgrows one machine sets ``CREDITLAB_CRYPTO_RAY_ADDRESS``
(``auto``, ``ray://host:10001``, ``host:6379`` or ``local``); :func:`get_pool`
then returns a :class:`crypto.ray_pool.RayExecutor` over that cluster instead
of the process pool. The kernels and chunk arguments are the very same, so
results are identical; only where the chunks run changes. Ray is imported
only then (lazily), so this module and its process-pool workers never import
it. Unset, nothing changes.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing
import os
import secrets
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import gmpy2
import numpy as np
from gmpy2 import mpz

from crypto.errors import CryptoError

__all__ = [
    "EncryptionParams",
    "CRTFixedBaseTable",
    "FixedBaseTable",
    "MIN_ITEMS_PER_CHUNK",
    "PoolArg",
    "block_to_ints",
    "byte_width",
    "choose_window",
    "chunk_bounds",
    "crt_decrypt",
    "decrypt_batch",
    "encrypt_with_factors",
    "get_pool",
    "ints_to_block",
    "multiexp",
    "parallelism",
    "random_factors",
    "ray_address",
    "resolve_pool",
    "run_chunks",
    "shutdown_pool",
    "signed_column_products",
    "table_for",
    "task_columns",
    "task_decrypt",
    "task_encrypt",
    "task_factors",
    "worker_count",
]

PoolArg = Executor | Literal["auto"] | None
"""What public functions accept as ``pool``: an executor, ``"auto"`` for the
module pool (or none on one core), or ``None`` to compute in-process."""

MIN_ITEMS_PER_CHUNK = 16
"""Below this many items per worker the pipe round trip costs more than it saves."""

_ENV_WORKERS = "CREDITLAB_CRYPTO_WORKERS"
_ENV_RAY_ADDRESS = "CREDITLAB_CRYPTO_RAY_ADDRESS"


# --------------------------------------------------------------------------- bytes helpers
def ints_to_block(values: Sequence[int], width: int) -> bytes:
    """Concatenate non-negative integers as fixed-width big-endian bytes."""
    try:
        return b"".join(mpz(v).to_bytes(width, "big") for v in values)
    except OverflowError as exc:
        raise CryptoError(
            f"an integer does not fit in {width} bytes (negative or too large for the modulus)"
        ) from exc


def block_to_ints(block: bytes | memoryview, width: int) -> list[mpz]:
    """Inverse of :func:`ints_to_block`."""
    view = memoryview(block)
    if width <= 0 or len(view) % width:
        raise CryptoError(f"byte block of {len(view)} bytes is not a multiple of width {width}")
    return [mpz.from_bytes(view[i : i + width], "big") for i in range(0, len(view), width)]


def byte_width(modulus: int) -> int:
    """Bytes needed for any residue modulo ``modulus``."""
    return (int(modulus).bit_length() + 7) // 8


# --------------------------------------------------------------------------- encryption kernels
class FixedBaseTable:
    """Precomputed powers of one base for fast ``base^a mod m`` with ``a < 2^bits``.

    Row ``i`` holds ``base^(d · 2^(w·i))`` for every digit ``d < 2^w``, so
    ``base^a = ∏_i row_i[digit_i(a)]`` costs ``ceil(bits / w) − 1`` mulmods and
    no squarings. With the DJN exponent of 224 bits and ``w = 8`` that is 27
    mulmods instead of ~2,300 for a full ``r^n``; the table holds
    ``28 × 256`` residues (3.7 MB at 2048 bits) and takes ~7,000 mulmods to
    build.

    Parameters
    ----------
    base : int
        The fixed base (``h_s = h^n mod n²`` for DJN).
    modulus : int
        Modulus of the group (``n²``).
    exponent_bits : int
        Exponents must be below ``2**exponent_bits``.
    window : int, default 8
        Digit width ``w``; larger is fewer mulmods per power but a table
        ``2^w / w`` times larger.
    """

    def __init__(self, base: int, modulus: int, exponent_bits: int, window: int = 8) -> None:
        if not 1 <= window <= 16:
            raise CryptoError(f"window must be in [1, 16], got {window}")
        if exponent_bits < 1:
            raise CryptoError(f"exponent_bits must be positive, got {exponent_bits}")
        self.modulus = mpz(modulus)
        self.exponent_bits = exponent_bits
        self.window = window
        m = self.modulus
        g = mpz(base) % m
        rows: list[list[mpz]] = []
        for _ in range(math.ceil(exponent_bits / window)):
            row = [mpz(1), g]
            for _ in range(2, 1 << window):
                row.append(row[-1] * g % m)
            rows.append(row)
            g = row[-1] * g % m  # g^(2^w): the base of the next digit
        self.rows = rows

    def pow(self, exponent: int) -> mpz:
        """``base^exponent mod modulus`` for ``0 <= exponent < 2**exponent_bits``."""
        if not 0 <= exponent < (1 << self.exponent_bits):
            raise CryptoError(f"exponent outside [0, 2^{self.exponent_bits})")
        m, w, mask = self.modulus, self.window, (1 << self.window) - 1
        acc: mpz | None = None
        for row in self.rows:
            digit = exponent & mask
            exponent >>= w
            if digit:
                acc = row[digit] if acc is None else acc * row[digit] % m
        return mpz(1) if acc is None else acc


class CRTFixedBaseTable:
    """:class:`FixedBaseTable` powers modulo ``p²`` and ``q²``, joined by CRT into ``mod n²``.

    Why: a key owner encrypting under its *own* key knows ``n = p·q``, and a
    mulmod modulo ``p²`` (half the bits of ``n²``) costs about a quarter of
    one modulo ``n²``; two half-size combs plus one CRT join make an
    encryption of zero about twice as fast. The result is the very same
    ``h_s^a mod n²``, so ciphertexts are indistinguishable from those of
    :class:`FixedBaseTable`. Only the key owner's own process and its pool
    workers (same host, same domain — like the PSI secret) ever hold ``p``
    and ``q``; peers re-randomising under our key use the plain table.
    """

    def __init__(self, base: int, p: int, q: int, exponent_bits: int, window: int = 8) -> None:
        p, q = mpz(p), mpz(q)
        self.p_sq, self.q_sq = p * p, q * q
        self.modulus = self.p_sq * self.q_sq
        self.exponent_bits = exponent_bits
        self._p_table = FixedBaseTable(mpz(base) % self.p_sq, self.p_sq, exponent_bits, window)
        self._q_table = FixedBaseTable(mpz(base) % self.q_sq, self.q_sq, exponent_bits, window)
        self._p_sq_inv = gmpy2.invert(self.p_sq, self.q_sq)

    def pow(self, exponent: int) -> mpz:
        """``base^exponent mod n²`` via the two half-size tables and one CRT join."""
        x_p = self._p_table.pow(exponent)
        x_q = self._q_table.pow(exponent)
        return x_p + self.p_sq * ((x_q - x_p) * self._p_sq_inv % self.q_sq)


@dataclass(frozen=True)
class EncryptionParams:
    """Public parameters a worker needs to produce randomness for one key.

    ``method == "djn"``: factors are ``h_s^a`` with ``a`` uniform below
    ``2**exponent_bits``. ``method == "phe"``: factors are ``r^n`` with ``r``
    uniform in ``[1, n)`` (plain Paillier / python-paillier).
    """

    n: int
    method: str
    h_s: int
    exponent_bits: int
    window: int
    p: int = 0
    """Secret factor of ``n``, set only in the key owner's own process (CRT encryption)."""
    q: int = 0

    def __repr__(self) -> str:  # never print the factors
        return (f"EncryptionParams(n_bits={int(self.n).bit_length()}, method={self.method!r}, "
                f"exponent_bits={self.exponent_bits}, crt={bool(self.p)})")

    def table(self) -> FixedBaseTable | CRTFixedBaseTable:
        """A fresh fixed-base table for these parameters (CRT when the factors are known)."""
        if self.p and self.q:
            return CRTFixedBaseTable(self.h_s, self.p, self.q, self.exponent_bits, self.window)
        return FixedBaseTable(self.h_s, self.n * self.n, self.exponent_bits, self.window)


_TABLE_CACHE: dict[tuple[int, int, int, int, bool], FixedBaseTable | CRTFixedBaseTable] = {}
_TABLE_CACHE_LOCK = threading.Lock()
_TABLE_CACHE_SIZE = 4


def table_for(params: EncryptionParams) -> FixedBaseTable | CRTFixedBaseTable:
    """The fixed-base table for ``params``, built once per process and cached."""
    key = (params.n, params.h_s, params.exponent_bits, params.window, bool(params.p))
    with _TABLE_CACHE_LOCK:
        table = _TABLE_CACHE.get(key)
    if table is None:
        table = params.table()
        with _TABLE_CACHE_LOCK:
            while len(_TABLE_CACHE) >= _TABLE_CACHE_SIZE:
                _TABLE_CACHE.pop(next(iter(_TABLE_CACHE)))
            _TABLE_CACHE[key] = table
    return table


def random_factors(params: EncryptionParams, count: int,
                   table: FixedBaseTable | CRTFixedBaseTable | None = None) -> list[mpz]:
    """``count`` fresh encryptions of zero (randomness factors), each from ``secrets``."""
    n = mpz(params.n)
    nsq = n * n
    if params.method == "phe":
        return [gmpy2.powmod(mpz(1 + secrets.randbelow(params.n - 1)), n, nsq)
                for _ in range(count)]
    table = table or table_for(params)
    bits = params.exponent_bits
    return [table.pow(secrets.randbits(bits)) for _ in range(count)]


def encrypt_with_factors(ms: Sequence[int], factors: Sequence[mpz], n: int) -> list[mpz]:
    """Paillier ciphertexts ``(1 + m·n)·r mod n²`` from plaintexts and factors.

    Uses ``(1 + m·n)·r ≡ r + n·(m·r mod n)  (mod n²)``, so the plaintext
    costs one multiplication modulo ``n`` — the reason online encryption with
    precomputed factors runs at >100,000/s.
    """
    n = mpz(n)
    nsq = n * n
    out = []
    for m, r in zip(ms, factors, strict=True):
        c = r + n * (mpz(m) * r % n)
        out.append(c - nsq if c >= nsq else c)
    return out


# --------------------------------------------------------------------------- multi-exponentiation
def _window_cost(exps: np.ndarray, bits: int, c: int) -> tuple[float, int]:
    """Estimated mulmods of the bucket method with window ``c`` (and its window count)."""
    windows = math.ceil(bits / c)
    mask = (1 << c) - 1
    cost = float((windows - 1) * c)  # squarings between windows (Horner)
    for k in range(windows):
        nonzero = int(np.count_nonzero((exps >> (k * c)) & mask))
        # bucket fills + the cheaper of running-sum reduction and direct powmods
        cost += nonzero + min(2.0 * ((1 << c) - 1), min(nonzero, (1 << c) - 1) * 1.2 * c)
    return cost, windows


def _best_window(exps: np.ndarray) -> tuple[int, float]:
    """``(c, estimated mulmods)`` of the cheapest bucket window; ``c = 0`` is per-term powmod."""
    bits = int(exps.max()).bit_length()
    naive = float(np.sum(np.ceil(np.log2(exps.astype(np.float64) + 1.0)))) * 1.3
    best_c, best_cost = 0, naive
    for c in range(1, min(bits, 16) + 1):
        cost, _ = _window_cost(exps, bits, c)
        if cost < best_cost:
            best_c, best_cost = c, cost
    return best_c, best_cost


def choose_window(exps: np.ndarray) -> int:
    """Bucket window ``c`` minimising the estimated mulmods for these exponents.

    ``0`` means "per-term powmod is cheaper" (a handful of terms). For a
    column of 20,000 exponents of ~22 bits the choice is ``c = 11``: two
    windows, i.e. two mulmods per term plus ``2 × 2·2^11`` for the two
    bucket reductions — about 2.2 mulmods per term instead of the ~26 of a
    22-bit ``powmod``.
    """
    return _best_window(exps)[0]


def multiexp(bases: Sequence[mpz], exps: np.ndarray, modulus: mpz, *,
             group_equal: bool = True) -> mpz:
    """``∏ bases[i]^exps[i] mod modulus`` for positive int64 exponents (bucket method).

    For each ``c``-bit window of the exponents, base ``i`` is multiplied into
    bucket ``digit_i`` (one mulmod per non-zero digit); then
    ``∏_d B_d^d`` is formed with the running-product trick
    (``2·2^c`` mulmods, independent of the number of terms) and the windows
    are joined Horner-style with ``c`` squarings each. With ``group_equal``
    (the default) bases with equal exponents are merged first when the cost
    model says so (:func:`_group_equal_exponents`); the value is the same.
    """
    if len(bases) == 0:
        return mpz(1)
    m = mpz(modulus)
    grouped = _group_equal_exponents(bases, exps, m) if group_equal else None
    if grouped is not None:
        return multiexp(*grouped, m)
    c = choose_window(exps)
    if c == 0:
        acc = mpz(1)
        for base, e in zip(bases, exps.tolist(), strict=True):
            acc = acc * gmpy2.powmod(base, e, m) % m
        return acc
    bits = int(exps.max()).bit_length()
    mask = (1 << c) - 1
    result: mpz | None = None
    for k in reversed(range(math.ceil(bits / c))):
        if result is not None:
            result = gmpy2.powmod(result, 1 << c, m)
        digits = (exps >> (k * c)) & mask
        nz = np.flatnonzero(digits)
        buckets: dict[int, mpz] = {}
        for i, d in zip(nz.tolist(), digits[nz].tolist(), strict=True):
            b = buckets.get(d)
            buckets[d] = bases[i] if b is None else b * bases[i] % m
        window_value = _reduce_buckets(buckets, c, m)
        if window_value is not None:
            result = window_value if result is None else result * window_value % m
    return mpz(1) if result is None else result


def _group_equal_exponents(bases: Sequence[mpz], exps: np.ndarray, m: mpz
                           ) -> tuple[list[mpz], np.ndarray] | None:
    """Merge bases that share an exponent, when that is cheaper: ``∏ b^e = ∏_v (∏_{e=v} b)^v``.

    Why: binned, categorical and count features (sex, education, repayment
    status, a zero amount) take a few distinct values, so after one mulmod
    per term only a short multi-exponentiation over the distinct values is
    left — "sums only" for such columns, about 1 mulmod per term instead of
    the ~2.3 of two bucket windows. Returns ``None`` when grouping would not
    pay (mostly distinct exponents), so continuous columns keep the plain
    bucket method.
    """
    if len(exps) < 2:
        return None
    values, inverse = np.unique(exps, return_inverse=True)
    k = len(values)
    if k == len(exps):
        return None
    direct = _best_window(exps)[1]
    merged = (len(exps) - k) + _best_window(values)[1]
    if merged >= direct:
        return None
    groups: list[mpz | None] = [None] * k
    for base, g in zip(bases, inverse.tolist(), strict=True):
        current = groups[g]
        groups[g] = base if current is None else current * base % m
    return [mpz(1) if g is None else g for g in groups], values


def _reduce_buckets(buckets: dict[int, mpz], c: int, m: mpz) -> mpz | None:
    """``∏_d B_d^d``: running products when buckets are dense, powmods when sparse."""
    if not buckets:
        return None
    if len(buckets) * 1.2 * c < 2 * ((1 << c) - 1):
        acc = mpz(1)
        for d, b in buckets.items():
            acc = acc * gmpy2.powmod(b, d, m) % m
        return acc
    running: mpz | None = None
    acc: mpz | None = None
    for d in range((1 << c) - 1, 0, -1):
        b = buckets.get(d)
        if b is not None:
            running = b if running is None else running * b % m
        if running is not None:
            acc = running if acc is None else acc * running % m
    return acc


def signed_column_products(bases: Sequence[mpz], X: np.ndarray, modulus: mpz, *,
                           group_equal: bool = True) -> tuple[list[mpz], list[mpz]]:
    """Per column ``j``: ``(∏_{x_ij>0} c_i^{x_ij}, ∏_{x_ij<0} c_i^{-x_ij})``.

    Zeros are skipped. The caller joins the two halves with one modular
    inverse per column, so negative features cost no per-term inversions.
    """
    positives, negatives = [], []
    for j in range(X.shape[1]):
        col = X[:, j]
        pos = np.flatnonzero(col > 0)
        neg = np.flatnonzero(col < 0)
        positives.append(multiexp([bases[i] for i in pos.tolist()], col[pos], modulus,
                                  group_equal=group_equal))
        negatives.append(multiexp([bases[i] for i in neg.tolist()], -col[neg], modulus,
                                  group_equal=group_equal))
    return positives, negatives


# --------------------------------------------------------------------------- decryption
def _crt_constant(prime: mpz, n: mpz) -> mpz:
    """``L_p((n+1)^(p-1) mod p²)^-1 mod p``: phe's ``hp`` (or ``hq``) for ``g = n + 1``."""
    prime_sq = prime * prime
    return gmpy2.invert((gmpy2.powmod(n + 1, prime - 1, prime_sq) - 1) // prime, prime)


def _check_ciphertexts(cts: Sequence[int], nsq: mpz) -> None:
    for i, c in enumerate(cts):
        if not 0 < c < nsq:
            raise CryptoError(
                f"ciphertext at index {i} is outside [1, n²) for this key; it is not a "
                "ciphertext under this key (or it was damaged in transit)"
            )


def crt_decrypt(p: int, q: int, cts: Sequence[int]) -> list[mpz]:
    """Paillier CRT decryption (``g = n + 1``) to residues in ``[0, n)`` from ``n``'s factors.

    Why here and not only in :mod:`crypto.paillier`: workers must not import
    ``phe``, so the kernel takes the bare factors. Same math as phe's
    ``raw_decrypt``: exponentiations modulo ``p²`` and ``q²``, joined by CRT.
    """
    p, q = mpz(p), mpz(q)
    n = p * q
    _check_ciphertexts(cts, n * n)
    psq, qsq = p * p, q * q
    hp, hq, p_inv = _crt_constant(p, n), _crt_constant(q, n), gmpy2.invert(p, q)
    out = []
    for c in cts:
        c = mpz(c)
        mp = (gmpy2.powmod(c % psq, p - 1, psq) - 1) // p * hp % p
        mq = (gmpy2.powmod(c % qsq, q - 1, qsq) - 1) // q * hq % q
        out.append(mp + (mq - mp) * p_inv % q * p)
    return out


def decrypt_batch(p: int, q: int, cts: Sequence[int], *, pool: PoolArg = None) -> list[int]:
    """Decrypt a batch with :func:`crt_decrypt`, one chunk per worker of ``pool``.

    The factors travel to the key owner's *own* workers only (its process
    pool, or its own Ray cluster) — the same trust domain as the CRT
    encryptor's factors. Ciphertexts are range-checked here first, so an
    error names the index in the whole batch.
    """
    n = mpz(p) * mpz(q)
    cts = [mpz(c) for c in cts]
    _check_ciphertexts(cts, n * n)
    executor = resolve_pool(pool)
    bounds = chunk_bounds(len(cts), executor)
    if executor is None or len(bounds) <= 1:
        return [int(m) for m in crt_decrypt(p, q, cts)]
    ct_width, m_width = byte_width(n * n), byte_width(n)
    blocks = run_chunks(executor, task_decrypt,
                        [(int(p), int(q), ints_to_block(cts[lo:hi], ct_width), ct_width)
                         for lo, hi in bounds])
    return [int(m) for block in blocks for m in block_to_ints(block, m_width)]


# --------------------------------------------------------------------------- worker tasks
def task_encrypt(params: EncryptionParams, m_block: bytes, m_width: int,
                  ct_width: int) -> bytes:
    """Worker: encrypt one chunk of plaintext residues with fresh DJN/phe randomness."""
    ms = block_to_ints(m_block, m_width)
    factors = random_factors(params, len(ms))
    return ints_to_block(encrypt_with_factors(ms, factors, params.n), ct_width)


def task_factors(params: EncryptionParams, count: int, ct_width: int) -> bytes:
    """Worker: ``count`` fresh randomness factors (for an encryptor's pool)."""
    return ints_to_block(random_factors(params, count), ct_width)


def task_columns(modulus: int, base_block: bytes, width: int, x_block: bytes,
                  cols: int, group_equal: bool = True) -> tuple[bytes, bytes]:
    """Worker: positive/negative column products over one chunk of rows."""
    bases = block_to_ints(base_block, width)
    X = np.frombuffer(x_block, dtype=np.int64).reshape(len(bases), cols)
    pos, neg = signed_column_products(bases, X, mpz(modulus), group_equal=group_equal)
    return ints_to_block(pos, width), ints_to_block(neg, width)


def task_decrypt(p: int, q: int, ct_block: bytes, ct_width: int) -> bytes:
    """Worker: CRT-decrypt one chunk of ciphertexts (the key owner's own workers only)."""
    residues = crt_decrypt(p, q, block_to_ints(ct_block, ct_width))
    return ints_to_block(residues, byte_width(mpz(p) * mpz(q)))


# --------------------------------------------------------------------------- pool lifecycle
_POOL: Executor | None = None
_POOL_PID: int | None = None
_POOL_LOCK = threading.Lock()
_ATEXIT_REGISTERED = False


def worker_count() -> int:
    """Workers the module pool uses: ``$CREDITLAB_CRYPTO_WORKERS`` or the usable cores."""
    raw = os.environ.get(_ENV_WORKERS, "").strip()
    if raw:
        try:
            count = int(raw)
        except ValueError:
            count = -1
        if count < 0:
            raise CryptoError(
                f"{_ENV_WORKERS}={raw!r} is not a non-negative integer; set it to the number "
                "of crypto worker processes (0 disables the pool)"
            )
        return count
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


_MAIN_SWAP_LOCK = threading.Lock()


@contextmanager
def _without_main_module() -> Iterator[None]:
    """Hide the parent's ``__main__`` while a worker is launched.

    ``spawn`` children normally re-run the parent's main module (as
    ``__mp_main__``) so that objects defined there unpickle. Our tasks live
    in this module, so that re-import is pure cost — inside a Ray actor or
    the ``creditlab`` CLI it would import Ray, Flower and torch into every
    worker. The swap lasts only while ``Process.start`` gathers its
    preparation data.
    """
    with _MAIN_SWAP_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is None:
                sys.modules.pop("__main__", None)
            else:
                sys.modules["__main__"] = main


class _LeanSpawnProcess(multiprocessing.context.SpawnProcess):
    """A ``spawn`` process whose child imports only what its task needs."""

    @staticmethod
    def _Popen(process_obj):  # multiprocessing looks this hook up by name
        with _without_main_module():
            return multiprocessing.context.SpawnProcess._Popen(process_obj)


class _LeanSpawnContext(multiprocessing.context.SpawnContext):
    """``spawn`` start method (never ``fork``) with :class:`_LeanSpawnProcess`."""

    Process = _LeanSpawnProcess


def ray_address() -> str:
    """``$CREDITLAB_CRYPTO_RAY_ADDRESS`` (stripped), or ``""`` when crypto stays on this machine."""
    return os.environ.get(_ENV_RAY_ADDRESS, "").strip()


def _is_ray_pool(pool: Executor | None) -> bool:
    """True for a :class:`crypto.ray_pool.RayExecutor`, without importing Ray."""
    return pool is not None and type(pool).__module__ == "crypto.ray_pool"


def _new_pool(address: str) -> Executor:
    """A Ray executor when ``address`` is set, else the lean-spawn process pool."""
    if address:
        from crypto.ray_pool import RayExecutor  # lazy: only a Ray-configured party imports Ray

        return RayExecutor(address, num_cpus=max(worker_count(), 1))
    return ProcessPoolExecutor(max_workers=worker_count(), mp_context=_LeanSpawnContext())


def get_pool() -> Executor | None:
    """The module-level pool, created on first use; ``None`` on one core.

    With ``$CREDITLAB_CRYPTO_RAY_ADDRESS`` set this is a
    :class:`crypto.ray_pool.RayExecutor` over that cluster (``local``: a Ray
    instance started here with :func:`worker_count` CPUs). Otherwise it is the
    process pool, and ``None`` when :func:`worker_count` is 0 or 1, so callers
    fall back to in-process computation (same results). A pool inherited
    through ``fork`` by a child process is never reused: the child gets its
    own. A pool of the other kind (the variable changed) is shut down first.
    """
    global _POOL, _POOL_PID, _ATEXIT_REGISTERED
    address = ray_address()
    if not address and worker_count() <= 1:
        return None
    with _POOL_LOCK:
        stale = _POOL is not None and _is_ray_pool(_POOL) != bool(address)
        if stale and os.getpid() == _POOL_PID:
            _POOL.shutdown(wait=True, cancel_futures=True)
        if _POOL is None or stale or os.getpid() != _POOL_PID:
            _POOL = None  # stays None if the new pool cannot be created (bad Ray address)
            _POOL = _new_pool(address)
            _POOL_PID = os.getpid()
            if not _ATEXIT_REGISTERED:
                atexit.register(shutdown_pool)
                _ATEXIT_REGISTERED = True
        return _POOL


def shutdown_pool() -> None:
    """Stop the module pool (idempotent; registered with ``atexit``).

    For Ray this stops the Ray instance only if the executor started it;
    a cluster or an in-process Ray it merely joined is left running.
    """
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        pool, pid = _POOL, _POOL_PID
        _POOL, _POOL_PID = None, None
    if pool is not None and pid == os.getpid():
        pool.shutdown(wait=True, cancel_futures=True)


def _discard_broken(pool: Executor) -> None:
    """Forget the module pool after a worker died, so the next call starts a fresh one."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if pool is _POOL:
            _POOL, _POOL_PID = None, None
    pool.shutdown(wait=False, cancel_futures=True)


def resolve_pool(pool: PoolArg) -> Executor | None:
    """Turn a ``pool`` argument into an executor or ``None`` (in-process)."""
    if pool is None:
        return None
    if isinstance(pool, str):
        if pool != "auto":
            raise CryptoError(f"pool must be an Executor, 'auto' or None, got {pool!r}")
        return get_pool()
    if isinstance(pool, Executor):
        return pool
    raise CryptoError(f"pool must be an Executor, 'auto' or None, got {type(pool).__name__}")


def parallelism(pool: Executor) -> int:
    """How many chunks to cut work into for ``pool`` (its worker count)."""
    return max(1, int(getattr(pool, "_max_workers", 0) or worker_count() or 1))


def chunk_bounds(length: int, pool: Executor | None) -> list[tuple[int, int]]:
    """Split ``range(length)`` into one contiguous chunk per worker (or one chunk)."""
    parts = 1 if pool is None else min(parallelism(pool), length // MIN_ITEMS_PER_CHUNK)
    parts = max(parts, 1)
    edges = [length * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts) if edges[i + 1] > edges[i]]


def run_chunks(pool: Executor, fn: Callable[..., object],
               arg_lists: Sequence[tuple]) -> list:
    """Run ``fn(*args)`` for each chunk on ``pool``; results in chunk order.

    A dead worker breaks a ``ProcessPoolExecutor`` for good: the module pool
    is then discarded (the next call creates a new one) and a
    :class:`CryptoError` says so instead of a bare ``BrokenProcessPool``.
    """
    try:
        futures = [pool.submit(fn, *args) for args in arg_lists]
        return [f.result() for f in futures]
    except BrokenProcessPool as exc:
        _discard_broken(pool)
        raise CryptoError(
            "a crypto worker process died (out of memory or killed); the pool was reset, "
            "retry the operation or set CREDITLAB_CRYPTO_WORKERS=0 to compute in-process"
        ) from exc
