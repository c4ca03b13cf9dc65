r"""Paillier keys, fast DJN encryption and CRT decryption on top of ``phe`` + gmpy2.

Keys are ``phe.PaillierPublicKey`` / ``phe.PaillierPrivateKey`` objects, so
anything written against python-paillier keeps working; this module adds what
the protocol needs around them: key generation with a size policy, a stable
fingerprint, storage formats, ~50× faster encryption, and batch decryption.

Encryption: the Damgård–Jurik–Nielsen variant
----------------------------------------------
Plain Paillier (``phe``) encrypts ``m`` as :math:`(1+n)^m r^n \bmod n^2` with a
fresh uniform ``r``; the ``r^n`` is a 2048-bit exponentiation modulo a
4096-bit number, ~86 per second per core here.

Damgård, Jurik & Nielsen ("A generalization of Paillier's public-key system
with applications to electronic voting", Int. J. Inf. Security 9(6),
371–385, 2010) fix one element once per key,

.. math::  h = -x^2 \bmod n, \qquad h_s = h^n \bmod n^2

for a random unit ``x``, and encrypt with :math:`r^n = h_s^a` for a *short*
random exponent ``a``:

.. math::  E(m) = (1 + m n) \cdot h_s^{a} \bmod n^2 .

Because :math:`h_s^a = (h^a)^n`, this is an ordinary Paillier ciphertext with
randomness :math:`h^a \bmod n`, and ``phe``'s ``raw_decrypt`` decrypts it
unchanged. :class:`DJNEncryptor` keeps a fixed-base table of :math:`h_s`
powers (:class:`crypto.pool.FixedBaseTable`), so :math:`h_s^a` costs 27
mulmods for a 224-bit ``a`` (~6,000/s per core at 2048 bits, see
``bench/crypto/results.json``) instead of a 2048-bit exponentiation.

Exponent length and security assumption. ``a`` has :math:`2\lambda` bits,
where :math:`\lambda` is the symmetric security of the modulus (NIST SP
800-57: 112 bits for 2048-bit ``n``, 128 for 3072): 224 bits at 2048. The
scheme is IND-CPA under the decisional composite residuosity assumption
(DCR, as plain Paillier) *plus* the short-exponent assumption that
:math:`h^a` for a :math:`2\lambda`-bit ``a`` is indistinguishable from a
uniform element of :math:`\langle h \rangle` — the "Paillier with short
exponents" setting of DJN 2010, resting on the short-exponent discrete-log
indistinguishability of Koshiba & Kurosawa ("Short exponent Diffie–Hellman
problems", PKC 2004). The best known generic attack on a
:math:`2\lambda`-bit exponent (Pollard's lambda / baby-step giant-step)
costs :math:`2^{\lambda}` group operations, matching the factoring security
of ``n``. DJN state the scheme for Blum moduli (``p ≡ q ≡ 3 mod 4``), where
``-1`` has Jacobi symbol 1 but is not a square, so ``h`` lies in the
Jacobi-symbol-1 subgroup outside the squares; :func:`generate_keypair`
produces such keys (keys from elsewhere still encrypt correctly). Callers
wanting DJN's more conservative exponent of ``bits/2`` bits can pass
``exponent_bits=1024`` (about 4.5× slower).

Encryption by the key owner (CRT)
---------------------------------
A party encrypting under its *own* key (every training step: the bank's
residuals, the platform's quarter logits) knows ``p`` and ``q``, so
``DJNEncryptor(public_key, private_key=...)`` evaluates :math:`h_s^a` modulo
:math:`p^2` and :math:`q^2` with two half-size tables and joins them by CRT
(:class:`crypto.pool.CRTFixedBaseTable`): the same group element, hence the
same ciphertext distribution, for about a third less CPU. Encryption under a
peer's key (re-randomisation) keeps the plain table.

Decryption
----------
:func:`decrypt_ints` is Paillier's 'decryption using Chinese-remaindering' (as in
``phe``), with every step in gmpy2 and the per-key constants converted once
per call instead of per ciphertext.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import Any, Literal

import gmpy2
from gmpy2 import mpz
from phe import PaillierPrivateKey, PaillierPublicKey

from crypto.errors import CryptoError, InsecureKeyError, KeyMismatchError
from crypto.pool import (
    CRTFixedBaseTable,
    EncryptionParams,
    FixedBaseTable,
    PoolArg,
    block_to_ints,
    byte_width,
    chunk_bounds,
    encrypt_with_factors,
    ints_to_block,
    random_factors,
    resolve_pool,
    run_chunks,
    task_encrypt,
    task_factors,
)

__all__ = [
    "DJNEncryptor",
    "MIN_KEY_BITS",
    "decrypt_ints",
    "generate_keypair",
    "key_fingerprint",
    "private_key_from_json",
    "private_key_to_json",
    "public_key_from_bytes",
    "public_key_to_bytes",
    "security_bits",
]

MIN_KEY_BITS = 2048
"""Smallest modulus for real data (112-bit security, NIST SP 800-57)."""

TEST_KEY_BITS = 1024
"""Smallest modulus accepted with ``test_only=True``: for fast unit tests, never data."""

DEFAULT_WINDOW = 8
"""Fixed-base digit width for encrypting under a peer's key (a few factors per step)."""

CRT_WINDOW = 11
"""Digit width for the key owner's CRT tables: 1.2× faster than 8 (measured), 11 MB per
half-size table at 2048 bits, built in ~0.1 s once per process."""

_PRIME_TEST_ROUNDS = 32
_PUBLIC_KEY_MAGIC = b"CLPK\x01"
_PRIVATE_KEY_FORMAT = "creditlab-paillier-private-key"


# --------------------------------------------------------------------------- key policy
def security_bits(modulus_bits: int) -> int:
    """Symmetric-equivalent security of an RSA/Paillier modulus (NIST SP 800-57 Part 1)."""
    for limit, strength in ((1024, 80), (2048, 112), (3072, 128), (7680, 192)):
        if modulus_bits <= limit:
            return strength
    return 256


def _check_key_size(bits: int, test_only: bool, what: str) -> None:
    if bits < TEST_KEY_BITS:
        raise InsecureKeyError(
            f"{what} has a {bits}-bit modulus; below {TEST_KEY_BITS} bits nothing is "
            f"supported, not even in tests; use {MIN_KEY_BITS} bits"
        )
    if bits < MIN_KEY_BITS and not test_only:
        raise InsecureKeyError(
            f"{what} has a {bits}-bit modulus, below the {MIN_KEY_BITS}-bit minimum for real "
            f"data; {TEST_KEY_BITS}-bit keys are for fast unit tests only — pass "
            "test_only=True in tests, or use a 2048-bit key"
        )


def _random_blum_prime(bits: int) -> int:
    """Uniform-ish prime of exactly ``bits`` bits with the top two bits set and ``p ≡ 3 mod 4``.

    The two top bits make ``p·q`` exactly ``2·bits`` long; ``3 mod 4`` makes
    ``n`` a Blum integer, the setting of the DJN short-exponent encryption.
    """
    top = 3 << (bits - 2)
    while True:
        candidate = mpz(secrets.randbits(bits) | top | 3)
        if gmpy2.is_prime(candidate, _PRIME_TEST_ROUNDS):
            return int(candidate)


def generate_keypair(
    bits: int = 2048, *, test_only: bool = False
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """Generate a Paillier key pair with a Blum modulus of exactly ``bits`` bits.

    Parameters
    ----------
    bits : int, default 2048
        Modulus length. 2048 is the minimum for real data (112-bit security).
    test_only : bool, default False
        Allow 1024-bit keys, which are ~7× faster and meant for unit tests
        only: they must never protect real data.

    Returns
    -------
    (PaillierPublicKey, PaillierPrivateKey)
        ``phe`` key objects (``g = n + 1``).

    Raises
    ------
    InsecureKeyError
        If ``bits < 2048`` without ``test_only``, or ``bits < 1024``.
    """
    if not isinstance(bits, int) or bits % 2:
        raise CryptoError(f"bits must be an even int, got {bits!r}")
    _check_key_size(bits, test_only, "the requested key")
    while True:
        p = _random_blum_prime(bits // 2)
        q = _random_blum_prime(bits // 2)
        if p != q and (p * q).bit_length() == bits:
            break
    public_key = PaillierPublicKey(p * q)
    return public_key, PaillierPrivateKey(public_key, p, q)


def key_fingerprint(public_key: PaillierPublicKey) -> str:
    """32 hex characters: SHA-256 of ``n`` (big-endian, minimal length), truncated.

    Travels with every ciphertext vector so that a vector under another key
    is refused instead of decrypting to garbage.
    """
    n = int(public_key.n)
    return hashlib.sha256(n.to_bytes(byte_width(n), "big")).hexdigest()[:32]


# --------------------------------------------------------------------------- storage formats
def private_key_to_json(private_key: PaillierPrivateKey) -> str:
    """Serialise a private key (``p``, ``q`` as hex) for the owner's own key directory.

    The JSON also carries ``n`` and the fingerprint so a damaged or swapped
    file is detected on load. Store it with owner-only permissions: it is the
    secret that decrypts everything sent to this party.
    """
    n = int(private_key.public_key.n)
    document = {
        "format": _PRIVATE_KEY_FORMAT,
        "version": 1,
        "fingerprint": key_fingerprint(private_key.public_key),
        "n": format(n, "x"),
        "p": format(int(private_key.p), "x"),
        "q": format(int(private_key.q), "x"),
    }
    return json.dumps(document, indent=2)


def _hex_field(document: dict[str, Any], name: str) -> int:
    value = document.get(name)
    if not isinstance(value, str):
        raise CryptoError(f"private key JSON lacks the hex string field {name!r}")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise CryptoError(f"private key JSON field {name!r} is not hexadecimal") from exc


def private_key_from_json(
    text: str, *, test_only: bool = False
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """Load a key pair written by :func:`private_key_to_json`.

    Parameters
    ----------
    text : str
        The JSON document.
    test_only : bool, default False
        Accept a 1024-bit test key.

    Raises
    ------
    CryptoError
        If the document is malformed, ``p·q ≠ n``, a factor is not prime, or
        the stored fingerprint does not match.
    InsecureKeyError
        If the modulus is below 2048 bits without ``test_only``.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CryptoError(f"private key file is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != _PRIVATE_KEY_FORMAT:
        raise CryptoError(f"not a {_PRIVATE_KEY_FORMAT} document (wrong or missing 'format')")
    if document.get("version") != 1:
        raise CryptoError(f"unsupported private key version {document.get('version')!r}")
    p, q = _hex_field(document, "p"), _hex_field(document, "q")
    n = p * q
    if "n" in document and _hex_field(document, "n") != n:
        raise CryptoError("private key JSON is inconsistent: p·q differs from the stored n")
    if p == q or not (gmpy2.is_prime(p, _PRIME_TEST_ROUNDS)
                      and gmpy2.is_prime(q, _PRIME_TEST_ROUNDS)):
        raise CryptoError("private key JSON is damaged: p and q must be two distinct primes")
    _check_key_size(n.bit_length(), test_only, "the stored private key")
    public_key = PaillierPublicKey(n)
    stored = document.get("fingerprint")
    if stored is not None and stored != key_fingerprint(public_key):
        raise CryptoError(
            f"private key JSON fingerprint {stored} does not match its modulus "
            f"({key_fingerprint(public_key)}); the file was edited or mixed up"
        )
    return public_key, PaillierPrivateKey(public_key, p, q)


def public_key_to_bytes(public_key: PaillierPublicKey) -> bytes:
    """Compact public key for publishing: ``b"CLPK\\x01"`` + ``n`` big-endian."""
    n = int(public_key.n)
    return _PUBLIC_KEY_MAGIC + n.to_bytes(byte_width(n), "big")


def public_key_from_bytes(data: bytes, *, test_only: bool = False) -> PaillierPublicKey:
    """Parse :func:`public_key_to_bytes` output.

    Raises
    ------
    CryptoError
        On a wrong header or an implausible modulus (even, or not
        ``2·k`` bits as our generator makes them).
    InsecureKeyError
        If the modulus is below 2048 bits without ``test_only``.
    """
    raw = bytes(data)
    if not raw.startswith(_PUBLIC_KEY_MAGIC):
        raise CryptoError("not a CreditLab public key (missing the b'CLPK\\x01' header)")
    n = int.from_bytes(raw[len(_PUBLIC_KEY_MAGIC) :], "big")
    if n < 3 or n % 2 == 0:
        raise CryptoError("public key modulus is not an odd number > 2; the key is damaged")
    _check_key_size(n.bit_length(), test_only, "the public key")
    return PaillierPublicKey(n)


# --------------------------------------------------------------------------- encryption
class DJNEncryptor:
    """Fast Paillier encryption under one public key (DJN short exponents, see module doc).

    Holds ``h_s``, its fixed-base table, and a bounded pool of precomputed
    randomness factors (encryptions of zero). :meth:`refill` fills the pool
    now; :meth:`refill_in_background` has the process pool's workers compute
    factors while the party waits for the other side, and returns at once;
    each factor is popped exactly once and then forgotten, so no two
    ciphertexts ever share randomness. Pickling an encryptor drops the pool,
    factors still being computed (and the table, rebuilt on demand), so a
    copy can never replay a factor.

    Parameters
    ----------
    public_key : PaillierPublicKey
        Key to encrypt under (ours, or a peer's for :func:`crypto.vector.rerandomize`).
    pool_size : int, default 4096
        Maximum number of precomputed factors kept (each is one ciphertext
        size: 2 MB per 4096 at 2048 bits).
    method : {"djn", "phe"}, default "djn"
        ``"phe"`` uses a full ``r^n`` per encryption (plain python-paillier),
        kept for comparison and benchmarks.
    exponent_bits : int, optional
        Length of the DJN exponent ``a``; default ``2·λ`` (224 at 2048 bits).
        Values below ``2·λ`` are refused.
    window : int, optional
        Digit width of the fixed-base table: default 8 (27 mulmods per
        factor at 224 bits; 3.7 MB at 2048 bits), or 11 with ``private_key``
        (20 half-size mulmods per CRT half; 2 × 11 MB at 2048 bits), where
        the larger table is worth it because the owner encrypts every step.
    private_key : PaillierPrivateKey, optional
        The key owner's private key, for encrypting under its *own* key:
        randomness is then computed modulo ``p²`` and ``q²`` and joined by
        CRT (:class:`crypto.pool.CRTFixedBaseTable`), about twice as fast and
        the same ciphertexts in distribution. The factors reach only this
        process and its own pool workers; pickling the encryptor drops them.
    """

    def __init__(
        self,
        public_key: PaillierPublicKey,
        *,
        pool_size: int = 4096,
        method: Literal["djn", "phe"] = "djn",
        exponent_bits: int | None = None,
        window: int | None = None,
        private_key: PaillierPrivateKey | None = None,
    ) -> None:
        if method not in ("djn", "phe"):
            raise CryptoError(f"method must be 'djn' or 'phe', got {method!r}")
        if pool_size < 0:
            raise CryptoError(f"pool_size must be >= 0, got {pool_size}")
        n = int(public_key.n)
        minimum = 2 * security_bits(n.bit_length())
        if exponent_bits is None:
            exponent_bits = minimum
        if exponent_bits < minimum:
            raise InsecureKeyError(
                f"DJN exponent of {exponent_bits} bits is below 2·λ = {minimum} bits for a "
                f"{n.bit_length()}-bit modulus; leave exponent_bits unset"
            )
        self.public_key = public_key
        self.pool_size = pool_size
        self.method = method
        self.exponent_bits = exponent_bits
        h_s = 0
        if method == "djn":
            x = 0
            while math.gcd(x, n) != 1:
                x = 2 + secrets.randbelow(n - 3)
            h = n - x * x % n
            h_s = int(gmpy2.powmod(h, n, n * n))
        p = q = 0
        if private_key is not None and method == "djn":
            check_same_key(public_key, private_key.public_key, "a CRT encryptor's private key")
            p, q = int(private_key.p), int(private_key.q)
        if window is None:
            window = CRT_WINDOW if p else DEFAULT_WINDOW
        self.window = window
        self.params = EncryptionParams(n, method, h_s, exponent_bits, window, p, q)
        self._table: FixedBaseTable | CRTFixedBaseTable | None = None
        self._ready: deque[mpz] = deque()
        self._pending: deque[tuple[Future, int]] = deque()  # background blocks, their sizes
        self._lock = threading.Lock()

    # -- state --------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_ready"] = deque()  # never copy one-time randomness
        state["_pending"] = deque()
        state["_table"] = None
        params = self.params  # never copy the key's factors either
        state["params"] = EncryptionParams(params.n, params.method, params.h_s,
                                           params.exponent_bits, params.window)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"DJNEncryptor(key={key_fingerprint(self.public_key)}, method={self.method!r}, "
                f"exponent_bits={self.exponent_bits}, available={self.available})")

    @property
    def h_s(self) -> int:
        """The fixed element ``h^n mod n²`` (public; 0 for ``method="phe"``)."""
        return self.params.h_s

    @property
    def available(self) -> int:
        """Precomputed randomness factors ready for use."""
        return len(self._ready)

    @property
    def in_flight(self) -> int:
        """Factors being computed in the background (:meth:`refill_in_background`)."""
        return sum(count for _, count in self._pending)

    @property
    def uses_crt(self) -> bool:
        """True when randomness is computed with the key's factors (owner's encryptor)."""
        return bool(self.params.p)

    def _table_or_build(self) -> FixedBaseTable | CRTFixedBaseTable | None:
        if self.method != "djn":
            return None
        if self._table is None:
            self._table = self.params.table()
        return self._table

    def _fresh_factors(self, count: int, pool: PoolArg = None) -> list[mpz]:
        executor = resolve_pool(pool)
        bounds = chunk_bounds(count, executor)
        if executor is None or len(bounds) <= 1:
            return random_factors(self.params, count, self._table_or_build())
        width = byte_width(self.params.n ** 2)
        blocks = run_chunks(executor, task_factors,
                            [(self.params, hi - lo, width) for lo, hi in bounds])
        return [f for block in blocks for f in block_to_ints(block, width)]

    # -- public operations ----------------------------------------------------------------
    def refill(self, k: int | None = None, *, pool: PoolArg = None) -> int:
        """Precompute up to ``k`` randomness factors (default: fill to ``pool_size``).

        Call it when the party is idle; never exceeds ``pool_size``.

        Returns
        -------
        int
            Number of factors added.
        """
        room = self.pool_size - len(self._ready)
        count = room if k is None else max(0, min(k, room))
        if count == 0:
            return 0
        factors = self._fresh_factors(count, pool)
        with self._lock:
            self._ready.extend(factors)
        return count

    def refill_in_background(self, k: int | None = None, *, pool: PoolArg = "auto") -> int:
        """Start computing up to ``k`` factors on the pool's workers; return at once.

        Why: between two messages a party only waits for its peer. Called
        right after it replies, its own pool workers compute the randomness
        its next encryption needs, so that encryption costs one mulmod per
        value instead of a fixed-base exponentiation. The factors join the
        ready pool when next needed; a block still running then is waited
        for (it was started earlier, so this is never slower than computing
        it then). Never beyond ``pool_size`` ready plus in flight. Without a
        process pool nothing is started: a thread would hold the interpreter
        lock the next message needs.

        Returns
        -------
        int
            Number of factors started.
        """
        executor = resolve_pool(pool)
        if executor is None or self.method != "djn":
            return 0
        room = self.pool_size - len(self._ready) - self.in_flight
        count = room if k is None else max(0, min(k, room))
        if count == 0:
            return 0
        width = byte_width(self.params.n ** 2)
        with self._lock:
            for lo, hi in chunk_bounds(count, executor):
                future = executor.submit(task_factors, self.params, hi - lo, width)
                self._pending.append((future, hi - lo))
        return count

    def _collect(self, needed: int) -> None:
        """Move finished background factors to the ready pool, waiting only while short.

        A block that failed (a worker died) is dropped: its factors were never
        used, and fresh ones are computed in their place.
        """
        width = byte_width(self.params.n ** 2)
        with self._lock:
            while self._pending:
                future, _ = self._pending[0]
                if not future.done() and len(self._ready) >= needed:
                    return
                self._pending.popleft()
                try:
                    block = future.result()
                except Exception:  # noqa: BLE001 - unused randomness: recompute instead
                    continue
                self._ready.extend(block_to_ints(block, width))

    def take_factors(self, count: int, *, pool: PoolArg = None) -> list[mpz]:
        """``count`` randomness factors: precomputed ones first (removed), then fresh ones."""
        self._collect(count)
        taken: list[mpz] = []
        with self._lock:
            while self._ready and len(taken) < count:
                taken.append(self._ready.popleft())
        if len(taken) < count:
            taken.extend(self._fresh_factors(count - len(taken), pool))
        return taken

    def encrypt_ints(self, ms: Sequence[int], *, pool: PoolArg = None) -> list[mpz]:
        """Encrypt plaintext residues ``0 <= m < n``.

        Parameters
        ----------
        ms : sequence of int
            Plaintexts already reduced modulo ``n`` (the codec's job).
        pool : Executor, "auto" or None
            Process pool for the factors not covered by precomputed ones.

        Returns
        -------
        list of gmpy2.mpz
            Ciphertexts in ``[1, n²)``; they decrypt with ``phe``'s
            ``raw_decrypt`` (after ``int()``) or :func:`decrypt_ints`.
        """
        n = self.params.n
        for i, m in enumerate(ms):
            if not 0 <= m < n:
                raise CryptoError(
                    f"plaintext at index {i} is outside [0, n); reduce it modulo n first "
                    "(FixedPointCodec.encode returns signed ints)"
                )
        self._collect(len(ms))
        with self._lock:
            pre = [self._ready.popleft() for _ in range(min(len(ms), len(self._ready)))]
        head = encrypt_with_factors(ms[: len(pre)], pre, n)
        rest = list(ms[len(pre) :])
        executor = resolve_pool(pool)
        bounds = chunk_bounds(len(rest), executor)
        if executor is None or len(bounds) <= 1:
            return head + encrypt_with_factors(rest, self._fresh_factors(len(rest)), n)
        m_width, ct_width = byte_width(n), byte_width(n * n)
        blocks = run_chunks(
            executor,
            task_encrypt,
            [(self.params, ints_to_block(rest[lo:hi], m_width), m_width, ct_width)
             for lo, hi in bounds],
        )
        return head + [c for block in blocks for c in block_to_ints(block, ct_width)]


# --------------------------------------------------------------------------- decryption
def decrypt_ints(private_key: PaillierPrivateKey, cts: Iterable[int]) -> list[int]:
    """CRT-decrypt ciphertexts to residues in ``[0, n)``.

    Same math as ``phe``'s ``raw_decrypt`` (mod ``p²`` and ``q²``, then CRT),
    with gmpy2 throughout and the key constants converted once.

    Raises
    ------
    CryptoError
        If a ciphertext is outside ``[1, n²)``.
    """
    n = mpz(private_key.public_key.n)
    nsq = n * n
    p, q = mpz(private_key.p), mpz(private_key.q)
    psq, qsq = p * p, q * q
    hp, hq, p_inv = mpz(private_key.hp), mpz(private_key.hq), mpz(private_key.p_inverse)
    p1, q1 = p - 1, q - 1
    out: list[int] = []
    for i, c in enumerate(cts):
        c = mpz(c)
        if not 0 < c < nsq:
            raise CryptoError(
                f"ciphertext at index {i} is outside [1, n²) for this key; it is not a "
                "ciphertext under this key (or it was damaged in transit)"
            )
        mp = (gmpy2.powmod(c % psq, p1, psq) - 1) // p * hp % p
        mq = (gmpy2.powmod(c % qsq, q1, qsq) - 1) // q * hq % q
        out.append(int(mp + (mq - mp) * p_inv % q * p))
    return out


def check_same_key(public_key: PaillierPublicKey, other: PaillierPublicKey, what: str) -> None:
    """Raise :class:`KeyMismatchError` naming both fingerprints if the keys differ."""
    if int(public_key.n) != int(other.n):
        raise KeyMismatchError(
            f"{what}: expected key {key_fingerprint(public_key)}, got "
            f"{key_fingerprint(other)}; a vector can only be used with the key it was "
            "encrypted under"
        )
