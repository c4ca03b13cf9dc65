"""The crypto batch operations on Ray (:class:`crypto.ray_pool.RayExecutor`).

Against a local Ray instance with 2 CPUs: DJN and CRT (owner) encryption,
``Xᵀ[[e]]``, re-randomisation with factors computed on Ray, and CRT
decryption and PSI blinding give the in-process results — bit-identical where the operation
is deterministic, otherwise the same plaintexts under phe's own decryption —
and the work really ran as Ray tasks. Also: ``CREDITLAB_CRYPTO_RAY_ADDRESS``
selects Ray in :func:`crypto.pool.get_pool`, and a bad address fails fast
with an error naming the variable. 1024-bit test-only keys.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from crypto import pool as crypto_pool
from crypto.codec import FixedPointCodec, quantise_features
from crypto.errors import CryptoError
from crypto.paillier import DJNEncryptor, decrypt_ints, generate_keypair
from crypto.pool import block_to_ints, chunk_bounds, decrypt_batch, parallelism
from crypto.vector import EncryptedVector, encrypt_vector, rerandomize, xt_e

ray = pytest.importorskip("ray")
from crypto.ray_pool import ENV_RAY_ADDRESS, RayExecutor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
X_FRAC = 16


@pytest.fixture(scope="module")
def ray_executor():
    """A local 2-CPU Ray instance (started and stopped here) and an executor on it."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    executor = RayExecutor()
    assert not executor.started_ray  # it joined our instance: it must not stop it
    yield executor
    executor.shutdown()
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(1024, test_only=True)


def _phe_decrypt(private_key, cts) -> list[int]:
    """phe's own CRT decryption, one ciphertext at a time."""
    return [int(private_key.raw_decrypt(int(c))) for c in cts]


def _edge_plaintexts(n: int, rng: np.random.Generator, count: int) -> list[int]:
    return [0, 1, n - 1, n // 2, (n + 1) // 2] + [int(rng.integers(0, 2**62))
                                                 for _ in range(count)]


def _ran_on_ray(executor: RayExecutor, before: int, chunks: int = 2) -> bool:
    return executor.tasks_submitted - before == chunks


# --------------------------------------------------------------------------- the executor
def test_tasks_run_in_ray_workers_with_one_chunk_per_cpu(ray_executor) -> None:
    assert ray_executor._max_workers == 2 == parallelism(ray_executor)
    assert len(chunk_bounds(1000, ray_executor)) == 2
    before = ray_executor.tasks_submitted
    future = ray_executor.submit(os.getpid)
    assert isinstance(future, Future)
    assert future.result(timeout=60) != os.getpid()  # another process: a Ray worker
    assert ray_executor.tasks_submitted == before + 1
    in_worker = ray_executor.submit(eval, "__import__('ray').get_runtime_context().get_task_id()")
    assert in_worker.result(timeout=60)  # only a Ray task has a task id


def test_a_kernel_error_stays_a_crypto_error(ray_executor) -> None:
    future = ray_executor.submit(block_to_ints, b"\x00" * 5, 2)
    with pytest.raises(CryptoError, match="not a multiple of width"):
        future.result(timeout=60)


# --------------------------------------------------------------------------- encryption
def test_djn_encryption_on_ray_decrypts_with_phe(ray_executor, keys) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    ms = _edge_plaintexts(n, np.random.default_rng(1), 95)
    enc = DJNEncryptor(public_key, pool_size=0)
    before = ray_executor.tasks_submitted
    cts = enc.encrypt_ints(ms, pool=ray_executor)
    assert _ran_on_ray(ray_executor, before)
    assert _phe_decrypt(private_key, cts) == ms
    assert len({int(c) for c in cts}) == len(cts)  # fresh randomness per ciphertext


def test_crt_owner_encryption_on_ray_with_negatives_and_range_edges(ray_executor, keys) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    codec = FixedPointCodec()
    values = np.concatenate([[0.0, -0.0, codec.max_abs, -codec.max_abs, 1e-9, -1e-9],
                             np.random.default_rng(2).normal(scale=5.0, size=90)])
    enc = DJNEncryptor(public_key, private_key=private_key, pool_size=40)
    assert enc.uses_crt
    assert enc.refill(pool=ray_executor) == 40  # precomputed factors from Ray...
    before = ray_executor.tasks_submitted
    ev = encrypt_vector(enc, values, codec, pool=ray_executor)  # ...then fresh ones on Ray
    assert enc.available == 0 and _ran_on_ray(ray_executor, before)
    assert _phe_decrypt(private_key, ev.ciphertexts) == [m % n for m in codec.encode(values)]


# --------------------------------------------------------------------------- Xᵀ[[e]]
def _features(rng: np.random.Generator, rows: int) -> np.ndarray:
    X = np.column_stack([
        rng.normal(size=rows),                             # continuous, both signs
        rng.integers(-2, 9, size=rows).astype(float) / 3,  # categorical (grouped)
        np.zeros(rows),                                    # all-zero column
        np.full(rows, -2.5),                               # constant negative
    ])
    X[rows // 3] = 0.0  # a zero row
    X[0, 0], X[-1, 0] = 40.0, -40.0
    return X


def test_xt_e_on_ray_is_bit_identical_and_exact(ray_executor, keys) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    rng = np.random.default_rng(3)
    rows = 300
    X_q = quantise_features(_features(rng, rows), X_FRAC, max_abs=1024.0)
    codec = FixedPointCodec()
    v = rng.normal(scale=2.0, size=rows)
    ev = encrypt_vector(DJNEncryptor(public_key), v, codec)
    before = ray_executor.tasks_submitted
    on_ray = xt_e(X_q, X_FRAC, ev, pool=ray_executor)
    assert _ran_on_ray(ray_executor, before)
    local = xt_e(X_q, X_FRAC, ev)
    assert [int(c) for c in on_ray.ciphertexts] == [int(c) for c in local.ciphertexts]
    ms = [m % n for m in codec.encode(v)]
    exact = [sum(int(x) * m for x, m in zip(X_q[:, j], ms, strict=True)) % n
             for j in range(X_q.shape[1])]
    assert _phe_decrypt(private_key, on_ray.ciphertexts) == exact


# --------------------------------------------------------------------------- re-randomisation
def test_rerandomize_with_factors_computed_on_ray(ray_executor, keys) -> None:
    public_key, private_key = keys
    peer = DJNEncryptor(public_key, pool_size=64)  # a peer's encryptor under our key
    before = ray_executor.tasks_submitted
    assert peer.refill_in_background(64, pool=ray_executor) == 64
    assert peer.in_flight == 64 and _ran_on_ray(ray_executor, before)
    rng = np.random.default_rng(4)
    ms = _edge_plaintexts(int(public_key.n), rng, 59)
    ev = EncryptedVector(public_key, DJNEncryptor(public_key).encrypt_ints(ms), 20)
    fresh = rerandomize(ev, peer)
    assert peer.in_flight == 0 and peer.available == 0  # the Ray factors were used, once
    assert all(int(a) != int(b) for a, b in zip(fresh.ciphertexts, ev.ciphertexts, strict=True))
    assert _phe_decrypt(private_key, fresh.ciphertexts) == ms


# --------------------------------------------------------------------------- decryption
def test_decryption_on_ray_equals_in_process_and_phe(ray_executor, keys) -> None:
    public_key, private_key = keys
    n = int(public_key.n)
    ms = _edge_plaintexts(n, np.random.default_rng(5), 75)
    cts = DJNEncryptor(public_key).encrypt_ints(ms) + [1]  # 1: the all-zero column's product
    p, q = int(private_key.p), int(private_key.q)
    before = ray_executor.tasks_submitted
    on_ray = decrypt_batch(p, q, cts, pool=ray_executor)
    assert _ran_on_ray(ray_executor, before)
    assert on_ray == decrypt_ints(private_key, cts) == _phe_decrypt(private_key, cts) == ms + [0]
    assert decrypt_batch(p, q, cts) == on_ray  # in-process path
    with pytest.raises(CryptoError, match="index 80"):
        decrypt_batch(p, q, cts[:80] + [n * n], pool=ray_executor)


# --------------------------------------------------------------------------- configuration
def test_get_pool_honours_the_ray_address(ray_executor, monkeypatch) -> None:
    crypto_pool.shutdown_pool()
    monkeypatch.setenv(ENV_RAY_ADDRESS, "auto")
    try:
        pool = crypto_pool.get_pool()
        assert isinstance(pool, RayExecutor) and crypto_pool.get_pool() is pool
        assert not pool.started_ray  # Ray was running here already: joined, not started
        assert crypto_pool.resolve_pool("auto") is pool
        assert crypto_pool.parallelism(pool) == 2
    finally:
        crypto_pool.shutdown_pool()
    assert ray.is_initialized()  # shutting our executor down left the instance running
    monkeypatch.delenv(ENV_RAY_ADDRESS)
    monkeypatch.setenv("CREDITLAB_CRYPTO_WORKERS", "0")
    assert crypto_pool.get_pool() is None  # unset: today's behaviour
    monkeypatch.setenv("CREDITLAB_CRYPTO_WORKERS", "2")
    try:
        assert isinstance(crypto_pool.get_pool(), ProcessPoolExecutor)
    finally:
        crypto_pool.shutdown_pool()


def test_psi_blinding_on_ray_equals_in_process(ray_executor, monkeypatch) -> None:
    """PSI's batch hash-to-group and scalar multiplications run on the party's Ray pool too."""
    from crypto.psi import PsiParty

    ids = [f"91120000{i:09d}X"[:18] for i in range(20_000)]  # 2 × MIN_ITEMS_PER_WORKER
    party, peer = PsiParty(), PsiParty()
    own_here = party.blind_own(ids, workers=1)
    other_here = peer.blind_other(own_here, workers=1)
    crypto_pool.shutdown_pool()
    monkeypatch.setenv(ENV_RAY_ADDRESS, "auto")
    try:
        pool = crypto_pool.get_pool()
        assert isinstance(pool, RayExecutor)
        before = pool.tasks_submitted
        assert np.array_equal(party.blind_own(ids, workers=2), own_here)
        assert np.array_equal(peer.blind_other(own_here, workers=2), other_here)
        assert pool.tasks_submitted - before == 4  # two chunks per step, as Ray tasks
    finally:
        crypto_pool.shutdown_pool()


def test_malformed_address_is_refused_naming_the_variable(ray_executor, monkeypatch) -> None:
    crypto_pool.shutdown_pool()
    for bad in ("http://cluster:6379", "cluster", "ray://cluster"):
        monkeypatch.setenv(ENV_RAY_ADDRESS, bad)
        with pytest.raises(CryptoError, match=ENV_RAY_ADDRESS):
            crypto_pool.get_pool()
    assert crypto_pool._POOL is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_fresh(code: str, address: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (no Ray initialised) with the variable set."""
    env = {**os.environ, ENV_RAY_ADDRESS: address, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_unreachable_address_fails_fast_with_a_clear_error() -> None:
    code = ("from crypto.errors import CryptoError\n"
            "from crypto.pool import get_pool\n"
            "try:\n    get_pool()\nexcept CryptoError as e:\n    print('ERR', e)\n")
    start = time.perf_counter()
    result = _run_fresh(code, f"ray://127.0.0.1:{_closed_port()}")
    assert time.perf_counter() - start < 20
    assert result.stdout.startswith("ERR"), result.stderr[-2000:]
    assert ENV_RAY_ADDRESS in result.stdout and "cannot reach" in result.stdout


def test_a_fresh_process_connects_to_a_cluster_address(ray_executor) -> None:
    """The ``ray.init(address=...)`` path: a second driver joins our instance by its GCS
    address, encrypts on it, and at exit disconnects without stopping the cluster."""
    code = ("from crypto.pool import get_pool\n"
            "from crypto.paillier import DJNEncryptor, decrypt_ints, generate_keypair\n"
            "pool = get_pool()\n"
            "pk, sk = generate_keypair(1024, test_only=True)\n"
            "ms = list(range(100))\n"
            "cts = DJNEncryptor(pk).encrypt_ints(ms, pool='auto')\n"
            "print(pool.started_ray, pool.tasks_submitted, decrypt_ints(sk, cts) == ms)\n")
    result = _run_fresh(code, ray.get_runtime_context().gcs_address)
    assert result.stdout.split() == ["True", "2", "True"], result.stderr[-2000:]
    assert ray_executor.submit(int, "7").result(timeout=60) == 7  # our instance still runs


def test_crypto_pool_does_not_import_ray() -> None:
    code = ("import sys, crypto.pool, crypto.paillier, crypto.vector\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n")
    result = _run_fresh(code, "")
    assert result.stdout.strip() == "[]", result.stderr[-2000:]
