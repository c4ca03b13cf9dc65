"""ECDH private set intersection (PSI) over Curve25519's prime-order subgroup (X25519).

Two parties, each with a set of ids, learn which ids they share and nothing
else about the other's ids (semi-honest model). This aligns the bank's and
the platform's rows before training (DESIGN.md §3 step 1).

Protocol
--------
Let ``G`` be a group of prime order ``L`` where decisional Diffie-Hellman is
hard, ``H`` a hash from ids to ``G``, and ``a``, ``b`` the parties' secret
scalars.

1. Each party normalises its ids (:func:`crypto.identifiers.normalise_id`),
   hashes them to the group and raises them to its secret
   (:meth:`PsiParty.blind_own`): A sends ``H(x)^a`` for its ids ``x``, B sends
   ``H(y)^b`` for its ids ``y``. Under DDH these look random: neither side nor
   the coordinator relaying them can test a guessed id without the secret.
2. Each raises the points it received to its own secret
   (:meth:`PsiParty.blind_other`): B computes ``H(x)^(ab)``, A computes
   ``H(y)^(ba)``. Exponentiation commutes, so an id held by both sides gets
   the same double-blinded token on both sides, and (up to collisions in a
   2^252-element group) different ids get different tokens.
3. Whoever holds both double-blinded lists, each in the row order its owner
   sent, calls :func:`intersect` to get the matching row indices.

What each side learns: the other's set size; and whoever intersects learns
which of its own rows match and the *positions* of the matching rows in the
other's list (meaningless if the other side shuffled its list before
blinding). Ids outside the intersection stay hidden under DDH in the random
oracle model. Tokens from different runs are unlinkable because each run uses
fresh scalars. Limits, as for any PSI: the model is semi-honest; a party can
always put guessed ids into its own set, so set sizes and who receives the
result are policy decisions of the caller.

The group, and why (DESIGN.md §5)
---------------------------------
``G`` is the prime-order subgroup of Curve25519, written by Montgomery
``u``-coordinate (32 bytes, little-endian), and ``P^a`` is libsodium's X25519
(``crypto_scalarmult``, through PyNaCl). That is the group FATE 2.x's Rust PSI
uses, and on this machine class the fastest one libsodium offers: measured in
one run (``bench/psi/results.json``) X25519 costs about half of
ristretto255's multiplication and a third of
``crypto_scalarmult_ed25519_noclamp`` (which re-checks subgroup membership
with a second multiplication): libsodium runs X25519 on its vectorised
Montgomery ladder and the other two on generic Edwards code (the system's
libsodium 1.0.18 and the one bundled by PyPI's ``rbcl`` measured the same).
That is the difference between missing and meeting FATE's ≈6,900 items/s per
side per core. Its properties, and how each is used:

* **Hash to the group.** ``H(x) = u(from_uniform(SHA-512(HASH_DOMAIN ‖ x)[:32]))``
  with ``x`` the UTF-8 normalised id: libsodium's
  ``crypto_core_ed25519_from_uniform`` is Elligator 2 followed by cofactor
  clearing — constant time, no try-and-increment that would leak timing on
  the id — so the point lies in the prime-order subgroup; the birational map
  ``u = (1 + y) / (1 − y)`` moves it from the Edwards to the Montgomery form
  of the same curve. A point and its negative share ``u``: the group is
  used up to sign, which X25519 respects (``u(a·P) = u(a·(−P))``), so
  commutativity and DDH carry over. This is a single Elligator 2 map
  ("encode to curve" in RFC 9380 terms), as DESIGN.md specifies; its output
  is not uniform over the group, which the random-oracle-model proof of this
  PSI does not need beyond collision resistance.
* **Scalars.** A secret is 32 random bytes; X25519 clamps it (clears the
  low three bits, sets bit 254), so the effective exponent is a multiple of
  the cofactor 8 and never zero.
* **Untrusted points.** Every 32-byte string is an X25519 input, so
  :meth:`PsiParty.blind_other` checks what it receives before multiplying:
  the encoding is canonical (``u < p``, top bit clear), ``u`` is on the curve
  and not on its quadratic twist (a Jacobi symbol, ≈3 µs), and the product
  is not the identity (libsodium refuses a small-order input: the all-zero
  output). A torsion component cannot leak anything: the clamped exponent is
  a multiple of 8 and erases it, so every token it returns lies in the
  prime-order subgroup. A refused row is named in the :class:`PsiError`.

Everything group-specific is in :func:`hash_to_group`, :func:`_scalarmult`
and :func:`_check_received`; swapping the group changes those three.

Parallelism
-----------
Batch methods take ``workers`` and split the batch into one contiguous chunk
per worker in a process pool: the party's long-lived crypto pool
(:func:`crypto.pool.get_pool`, ``spawn``) when it has enough workers, else a
pool started for the call. Such a pool uses the ``forkserver`` start method
(``spawn`` where unavailable), never ``fork``: this code runs inside Ray actor
processes, where forking a multi-threaded process can deadlock. The secret
scalar travels to the workers over a local pipe on the same host (inside the
party's domain) and never onto the wire. Batches too small to pay for a pool
(fewer than ``MIN_ITEMS_PER_WORKER`` items per worker) run in-process.
Results are identical either way. As with any forkserver/spawn pool, a
script that calls these methods at top level needs the
``if __name__ == "__main__":`` guard.

Wire format
-----------
Points are a C-contiguous ``uint8`` array of shape ``(n, 32)`` (Montgomery
``u``-coordinates, little-endian), which travels as-is in a Flower ``ArrayRecord``.
No pickle.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, NoReturn

import gmpy2
import nacl.bindings as _sodium
import nacl.exceptions
import numpy as np

from crypto.errors import CryptoError
from crypto.identifiers import mask_id, normalise_id
from crypto.pool import get_pool, parallelism

__all__ = [
    "HASH_DOMAIN",
    "MIN_ITEMS_PER_WORKER",
    "POINT_BYTES",
    "EmptyIntersectionError",
    "PsiError",
    "PsiParty",
    "hash_to_group",
    "intersect",
]

logger = logging.getLogger(__name__)

POINT_BYTES = 32
"""Size of one encoded group element (and of one PSI token) in bytes."""

SCALAR_BYTES = 32

HASH_DOMAIN = b"creditlab/psi/v2/x25519-elligator2/sha512\x00"
"""Domain-separation prefix of the id hash; both parties must use the same one."""

MIN_ITEMS_PER_WORKER = 10_000
"""Fewer items per worker than this run in-process. Starting a pool whose workers
import this module takes ≈0.3 s on an idle 2-core machine (≈3,000 items of work,
more under load); with ≥10,000 items (≈1 s) per worker it costs under a quarter."""

_POINT_DTYPE = np.dtype((np.void, POINT_BYTES))


# --------------------------------------------------------------------------- errors


class PsiError(CryptoError, ValueError):
    """A PSI input or step was wrong; the message says where and what to do.

    Part of the crypto package's one hierarchy (:class:`crypto.errors.CryptoError`),
    and a ``ValueError`` because every cause is bad input.
    """


class EmptyIntersectionError(PsiError):
    """The two sets share no id: almost always a preparation problem, not a result."""

    def __init__(self, own_count: int, other_count: int) -> None:
        self.own_count = own_count
        self.other_count = other_count
        super().__init__(
            f"PSI found no common ids between the own set ({own_count} ids) and the "
            f"other set ({other_count} ids). Check that both sides normalise ids the same "
            "way (crypto.identifiers.normalise_id), use the same id kind (USCC vs resident "
            "id vs opaque ids such as integers), and that both files describe the same "
            "population."
        )

    def __reduce__(self) -> tuple[type, tuple[int, int]]:
        """Keep the exception picklable across the worker pool."""
        return (type(self), (self.own_count, self.other_count))


# --------------------------------------------------------------------------- group

_P = 2**255 - 19
"""The field prime of Curve25519."""

_A = 486662
"""Montgomery coefficient: v² = u³ + A·u² + u."""


def hash_to_group(normalised_id: str) -> bytes:
    """Hash an already normalised id to the ``u``-coordinate of a prime-order point.

    ``u(from_uniform(SHA-512(HASH_DOMAIN ‖ utf8(id))[:32]))`` — Elligator 2
    plus cofactor clearing in libsodium, then Edwards ``y`` → Montgomery ``u``.
    """
    digest = hashlib.sha512(HASH_DOMAIN + normalised_id.encode("utf-8")).digest()
    edwards = _sodium.crypto_core_ed25519_from_uniform(digest[:32])
    y = int.from_bytes(edwards, "little") & ((1 << 255) - 1)
    # y = 1 is the identity, which Elligator 2 + cofactor clearing reaches with
    # probability 2^-252 (a small-order preimage); X25519 then refuses it.
    u = (1 + y) * gmpy2.invert(1 - y, _P) % _P if y != 1 else 0
    return int(u).to_bytes(32, "little")


def _scalarmult(scalar: bytes, point: bytes) -> bytes:
    """``point^scalar`` by X25519 (clamped scalar); libsodium refuses small-order points."""
    return _sodium.crypto_scalarmult(scalar, point)


def _check_received(point: bytes, row: int) -> None:
    """Refuse a non-canonical encoding or a point of the twist, naming the row.

    The small-order check is libsodium's own (in :func:`_scalarmult`).
    """
    u = int.from_bytes(point, "little")
    if u >= _P:
        _raise_bad_point(row, "a non-canonical encoding (u >= p or top bit set)")
    if gmpy2.jacobi((u * u + _A * u + 1) * u % _P, _P) < 0:
        _raise_bad_point(row, "not on Curve25519 (a point of its quadratic twist)")


def _random_scalar() -> bytes:
    """A fresh secret: 32 random bytes (X25519 clamps them to a multiple of 8)."""
    return os.urandom(SCALAR_BYTES)


def _scalar_from_secret(secret: bytes) -> bytes:
    """Check a caller-supplied 32-byte secret; refuse wrong types, sizes and all zeros."""
    if not isinstance(secret, bytes | bytearray):
        raise PsiError(
            f"secret must be bytes (32 bytes, e.g. PsiParty.new_secret()), "
            f"got {type(secret).__name__}"
        )
    if len(secret) != SCALAR_BYTES:
        raise PsiError(
            f"secret must be {SCALAR_BYTES} bytes (e.g. PsiParty.new_secret()), "
            f"got {len(secret)} bytes"
        )
    if not any(secret):
        raise PsiError("secret is all zero bytes, which is no secret; use PsiParty.new_secret()")
    return bytes(secret)


# --------------------------------------------------------------------------- batch kernels
# Module-level so that forkserver/spawn workers can import them by name.


def _blind_ids_chunk(scalar: bytes, ids: list[str], first_row: int) -> bytes:
    """Hash and blind normalised ids; returns the concatenated 32-byte points."""
    del first_row  # hashing cannot fail on a str; kept for a uniform chunk signature
    return b"".join([_scalarmult(scalar, hash_to_group(s)) for s in ids])


def _blind_points_chunk(scalar: bytes, blob: bytes, first_row: int) -> bytes:
    """Check and raise received points to ``scalar``; PsiError names the first bad row."""
    out: list[bytes] = []
    for i in range(0, len(blob), POINT_BYTES):
        point = blob[i : i + POINT_BYTES]
        _check_received(point, first_row + i // POINT_BYTES)
        try:
            out.append(_scalarmult(scalar, point))
        except nacl.exceptions.RuntimeError:
            _raise_bad_point(first_row + i // POINT_BYTES, "of small order (the identity "
                             "or a torsion point), so its product is the identity")
    return b"".join(out)


def _raise_bad_point(row: int, why: str) -> NoReturn:
    """Refuse the received point at ``row``, saying why."""
    raise PsiError(
        f"received point at row {row} is not a valid element of the Curve25519 prime-order "
        f"subgroup: {why}; the other party's blinded ids are corrupt or malicious "
        "- abort this PSI run"
    )


# --------------------------------------------------------------------------- pool


def _plan_workers(n_items: int, workers: int | None) -> int:
    """How many processes to use for ``n_items``: 1 means run in-process.

    ``workers=None`` means every core this process may run on. The count is
    capped so each worker gets at least ``MIN_ITEMS_PER_WORKER`` items.
    """
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise PsiError(f"workers must be >= 1 or None (all cores), got {workers}")
    return max(1, min(workers, n_items // MIN_ITEMS_PER_WORKER))


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver where the platform has it, else spawn; never fork (Ray actors)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _split(n_items: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges of near-equal size, one per part."""
    bounds = [n_items * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _run_chunks(
    kernel: Callable[[bytes, Any, int], bytes],
    scalar: bytes,
    chunks: list[tuple[Any, int]],
) -> bytes:
    """Run ``kernel(scalar, payload, first_row)`` per chunk, in order, and concatenate.

    The party's long-lived crypto pool (:func:`crypto.pool.get_pool`, spawn,
    lean workers) is used when it has a worker per chunk: a fresh pool per
    call cost 1–4 s of start-up per PSI message on the 2-core machine under
    load (measured in the main job's alignment, 30,000 ids per side), more
    than the scalar multiplications themselves. Otherwise a pool is started
    for the call, as before. Results are identical either way.
    """
    if len(chunks) == 1:
        payload, first_row = chunks[0]
        return kernel(scalar, payload, first_row)
    shared = get_pool()
    if shared is not None and parallelism(shared) >= len(chunks):
        futures = [shared.submit(kernel, scalar, payload, row) for payload, row in chunks]
        return b"".join(f.result() for f in futures)
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=_pool_context()) as pool:
        futures = [pool.submit(kernel, scalar, payload, row) for payload, row in chunks]
        return b"".join(f.result() for f in futures)


def _to_points(blob: bytes, n_items: int) -> np.ndarray:
    """Concatenated point bytes → writable ``uint8`` array of shape ``(n, 32)``."""
    return np.frombuffer(bytearray(blob), dtype=np.uint8).reshape(n_items, POINT_BYTES)


def _check_points(points: object, name: str) -> np.ndarray:
    """Validate the shape and dtype of a point array; return it C-contiguous."""
    if not isinstance(points, np.ndarray):
        raise PsiError(
            f"{name} must be a numpy uint8 array of shape (n, {POINT_BYTES}), "
            f"got {type(points).__name__}"
        )
    if points.dtype != np.uint8 or points.ndim != 2 or points.shape[1] != POINT_BYTES:
        raise PsiError(
            f"{name} must be a uint8 array of shape (n, {POINT_BYTES}), "
            f"got {points.dtype} with shape {points.shape}"
        )
    return np.ascontiguousarray(points)


# --------------------------------------------------------------------------- party


class PsiParty:
    """One side of an ECDH-PSI run, holding a secret scalar.

    Parameters
    ----------
    secret : bytes or None, default None
        32-byte secret scalar (clamped by X25519). None draws a fresh one, which
        is what a single-process run wants. In Flower deployment every
        message starts a fresh process, so a party that blinds its own ids in
        one message and the other's points in a later one generates the secret
        once with :meth:`new_secret`, keeps it in its own node state (its own
        domain, never in a message), and rebuilds ``PsiParty(secret)`` per
        message. Use a fresh secret per run so tokens cannot be linked across
        runs.

    Notes
    -----
    The object never returns, prints, logs or pickles its secret: ``repr``
    hides it and pickling raises ``TypeError``.
    """

    __slots__ = ("_scalar",)

    def __init__(self, secret: bytes | None = None) -> None:
        self._scalar = _random_scalar() if secret is None else _scalar_from_secret(secret)

    @staticmethod
    def new_secret() -> bytes:
        """A fresh uniform non-zero 32-byte scalar for ``PsiParty(secret=...)``."""
        return _random_scalar()

    def __repr__(self) -> str:
        return "PsiParty(secret=<hidden>)"

    def __getstate__(self) -> NoReturn:
        raise TypeError(
            "PsiParty holds a secret scalar and cannot be pickled; keep the secret you "
            "passed to PsiParty(secret=...) in your own node state instead"
        )

    def blind_own(self, ids: Sequence[str], workers: int | None = None) -> np.ndarray:
        """Hash own ids to the group and raise them to the secret: ``H(x)^a``.

        Parameters
        ----------
        ids : sequence of str
            This party's ids, one per row; they are normalised here (the same
            :func:`~crypto.identifiers.normalise_id` as :func:`check_ids`), so
            already normalised ids pass through unchanged. Run
            :func:`~crypto.identifiers.check_ids` first to drop invalid ids.
        workers : int or None, default None
            Processes to use; None means all cores. Small batches run in-process.

        Returns
        -------
        numpy.ndarray
            ``uint8`` array of shape ``(len(ids), 32)``, row ``i`` for ``ids[i]``.

        Raises
        ------
        PsiError
            If an id is not text, is empty after normalisation, or appears twice
            (the message names the rows and shows only masked ids).
        """
        normalised = _normalise_for_psi(ids)
        started = time.perf_counter()
        k = _plan_workers(len(normalised), workers)
        chunks: list[tuple[Any, int]] = [
            (normalised[a:b], a) for a, b in _split(len(normalised), k)
        ]
        blob = _run_chunks(_blind_ids_chunk, self._scalar, chunks)
        logger.debug(
            "blinded %d own ids with %d worker(s) in %.2fs",
            len(normalised),
            k,
            time.perf_counter() - started,
        )
        return _to_points(blob, len(normalised))

    def blind_other(self, points: np.ndarray, workers: int | None = None) -> np.ndarray:
        """Raise the other party's blinded points to the secret: ``(H(y)^b)^a``.

        Parameters
        ----------
        points : numpy.ndarray
            ``uint8`` array of shape ``(m, 32)`` received from the other party.
        workers : int or None, default None
            Processes to use; None means all cores. Small batches run in-process.

        Returns
        -------
        numpy.ndarray
            ``uint8`` array of shape ``(m, 32)`` in the same row order.

        Raises
        ------
        PsiError
            If the array has the wrong shape or dtype, or a row is not a valid
            point of the prime-order subgroup (the message names the row).
        """
        checked = _check_points(points, "points")
        n_items = checked.shape[0]
        started = time.perf_counter()
        k = _plan_workers(n_items, workers)
        chunks: list[tuple[Any, int]] = [(checked[a:b].tobytes(), a) for a, b in _split(n_items, k)]
        blob = _run_chunks(_blind_points_chunk, self._scalar, chunks)
        logger.debug(
            "blinded %d received points with %d worker(s) in %.2fs",
            n_items,
            k,
            time.perf_counter() - started,
        )
        return _to_points(blob, n_items)


def _normalise_for_psi(ids: Sequence[str]) -> list[str]:
    """Normalise ids and refuse non-text, empty and duplicate ids, naming rows."""
    normalised: list[str] = []
    first_row: dict[str, int] = {}
    for row, raw in enumerate(ids):
        if not isinstance(raw, str):
            raise PsiError(
                f"id at row {row} is {type(raw).__name__}, expected str; "
                "run crypto.identifiers.check_ids first and blind its normalised ids"
            )
        value = normalise_id(raw)
        if not value:
            raise PsiError(
                f"id at row {row} is empty after normalisation; "
                "run crypto.identifiers.check_ids first and blind only valid ids"
            )
        if value in first_row:
            raise PsiError(
                f"ids at rows {first_row[value]} and {row} are the same id "
                f"({mask_id(value)}) after normalisation; PSI takes a set - deduplicate "
                "first (IdCheckReport.unique_valid() gives one row per id)"
            )
        first_row[value] = row
        normalised.append(value)
    return normalised


# --------------------------------------------------------------------------- intersection


def _keys(points: np.ndarray, name: str) -> np.ndarray:
    """View each 32-byte row as one opaque key; refuse repeated tokens."""
    keys = points.view(_POINT_DTYPE).ravel()
    uniq, counts = np.unique(keys, return_counts=True)
    if uniq.size != keys.size:
        dup_key = uniq[np.argmax(counts > 1)]
        rows = np.flatnonzero(keys == dup_key)[:2].tolist()
        raise PsiError(
            f"{name} has the same token at rows {rows[0]} and {rows[1]}: that side blinded "
            "one id twice. PSI takes a set - deduplicate ids before blinding"
        )
    return keys


def intersect(own_double: np.ndarray, other_double: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Match double-blinded tokens and return the matching row indices.

    Parameters
    ----------
    own_double : numpy.ndarray
        ``uint8 (n, 32)``: own ids blinded by both parties, in own row order.
    other_double : numpy.ndarray
        ``uint8 (m, 32)``: the other party's ids blinded by both, in its row order.

    Returns
    -------
    (own_idx, other_idx) : tuple of numpy.ndarray of int
        ``own_double[own_idx[k]] == other_double[other_idx[k]]`` for every k,
        ordered by the token bytes. Both parties can reproduce this order from
        the tokens alone, so they agree on the order of aligned rows without
        exchanging ids, and the order says nothing about the ids themselves.

    Raises
    ------
    EmptyIntersectionError
        If no token matches (message gives both set sizes and what to check).
    PsiError
        On a wrong shape or dtype, or a token repeated within one side.
    """
    own = _keys(_check_points(own_double, "own_double"), "own_double")
    other = _keys(_check_points(other_double, "other_double"), "other_double")
    _, own_idx, other_idx = np.intersect1d(own, other, assume_unique=True, return_indices=True)
    if own_idx.size == 0:
        raise EmptyIntersectionError(own.size, other.size)
    logger.info(
        "PSI intersection: %d of %d own and %d other ids", own_idx.size, own.size, other.size
    )
    return own_idx.astype(np.int64), other_idx.astype(np.int64)
