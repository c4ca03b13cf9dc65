"""Benchmark the Paillier layer (crypto.paillier, crypto.vector) against its floors.

Measured at 1024 bits (test-only key size, for comparison) and 2048 bits
(the real default), ops/s per the stated number of cores:

* ``mulmod_n2`` — one ``a·b mod n²`` in gmpy2: the floor of everything below;
* ``powmod_rn`` — raw gmpy2 ``r^n mod n²``: the floor of plain encryption;
* ``phe_encrypt`` — ``phe.PaillierPublicKey.raw_encrypt`` (plain python-paillier);
* ``djn_encrypt_1core`` / ``djn_encrypt_pool`` — :class:`DJNEncryptor` with
  fresh randomness per ciphertext, in-process and on the process pool;
* ``djn_encrypt_online`` — encryption that only consumes factors
  precomputed by ``refill`` (what an idle party buys itself);
* ``xt_e`` — :func:`xt_e` on a 20,000 × 4 batch of standardised features
  (16 fractional bits), µs per term, 1 core and pool, against ``naive``:
  one ``powmod`` per term (negatives handled by one inverse per column);
* ``decrypt`` — :func:`decrypt_ints` (CRT, gmpy2) and phe's ``raw_decrypt``;
* ``ray`` (with ``--ray``) — the same kernels through
  :class:`crypto.ray_pool.RayExecutor` on a local Ray instance over the usable
  cores, against the process pool on the same cores (wall clock, best of
  repeats): what Ray's task overhead costs before it buys more machines.

Rates are the best of ``--repeats`` runs: other processes share this machine
and only slow a run down, never speed it up. In-process figures use this
process's CPU time; pool figures are wall-clock and suffer when other jobs
hold the cores, so the load average is recorded, and the pool's CPU overhead
(``pool_cpu_per_serial_cpu``) is measured apart from the wall clock.

Usage (from the repository root)::

    .venv/bin/python bench/crypto/run.py   # ~1.5 min on 2 idle cores, ~3 min when busy
    .venv/bin/python bench/crypto/run.py --repeats 1 --out /tmp/quick.json
    .venv/bin/python bench/crypto/run.py --ray only --bits 1024 --out /tmp/ray.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gmpy2
import numpy as np
import phe
from gmpy2 import mpz

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make `crypto` importable
    sys.path.insert(0, str(REPO))

from crypto import pool as crypto_pool  # noqa: E402
from crypto.codec import FixedPointCodec, quantise_features  # noqa: E402
from crypto.paillier import DJNEncryptor, decrypt_ints, generate_keypair  # noqa: E402
from crypto.pool import decrypt_batch  # noqa: E402
from crypto.vector import EncryptedVector, encrypt_vector, xt_e  # noqa: E402

ROWS = 20_000
COLS = 4
X_FRAC = 16

# operations per timed run, per key size: enough for ≥ ~0.3 s each at 2048 bits
SIZES = {
    1024: {"mulmod": 40_000, "powmod": 300, "phe": 300, "djn": 8_000, "djn_pool": 20_000,
           "online": 4_096, "naive": 4_000, "decrypt": 1_500},
    2048: {"mulmod": 10_000, "powmod": 40, "phe": 40, "djn": 2_000, "djn_pool": 6_000,
           "online": 4_096, "naive": 1_500, "decrypt": 200},
}


def best_time(fn: Callable[[], object], repeats: int, *, wall: bool = False) -> float:
    """Smallest time of ``repeats`` calls of ``fn``.

    In-process (one-core) work is timed with this process's CPU time, which
    other jobs on the machine cannot inflate; pool work (``wall=True``) is
    timed on the wall clock, because its workers are other processes.
    """
    clock = time.perf_counter if wall else time.process_time
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def children_cpu() -> float:
    """CPU seconds used so far by this process's live children (the pool's workers).

    Read from ``/proc/self/task/*/children`` and ``/proc/PID/stat`` (Linux).
    """
    pids: set[int] = set()
    for path in Path("/proc/self/task").glob("*/children"):
        pids.update(int(p) for p in path.read_text().split())
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class PoolAccount:
    """CPU spent on pool runs against the CPU of the same work done serially.

    Wall-clock speedups need idle cores; this ratio does not: it counts the
    workers' CPU plus this process's CPU while waiting on them (after the
    workers have started and built their tables), so it measures the pool's
    overhead whatever else runs on the machine.
    """

    def __init__(self) -> None:
        self.serial_cpu = 0.0
        self.pool_main_cpu = 0.0
        self.children_start = 0.0

    def start(self) -> None:
        self.children_start = children_cpu()

    def ratio(self) -> float:
        workers = children_cpu() - self.children_start
        return (workers + self.pool_main_cpu) / self.serial_cpu


def interleaved(serial: Callable[[], object], parallel: Callable[[], object],
                repeats: int, account: PoolAccount) -> tuple[float, float, float]:
    """Best serial CPU time, best pool wall time, median wall-clock speedup.

    The two variants alternate, so both see the same background load: the
    speedup is less distorted by other jobs than absolute wall-clock rates.
    """
    serial_cpu, pool_times, ratios = [], [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        serial()
        serial_wall = time.perf_counter() - start
        serial_cpu.append(time.process_time() - start_cpu)
        start, start_cpu = time.perf_counter(), time.process_time()
        parallel()
        pool_wall = time.perf_counter() - start
        account.pool_main_cpu += time.process_time() - start_cpu
        pool_times.append(pool_wall)
        ratios.append(serial_wall / pool_wall)
    account.serial_cpu += sum(serial_cpu)
    return min(serial_cpu), min(pool_times), float(np.median(ratios))


def machine_info() -> dict[str, object]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "crypto_workers": crypto_pool.worker_count(),
        "python": platform.python_version(),
        "gmpy2": gmpy2.version(),
        "gmp": gmpy2.mp_version(),
        "numpy": np.__version__,
        "phe": getattr(phe, "__version__", "1.5.0"),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def synthetic_features(rng: np.random.Generator) -> np.ndarray:
    """Standardised features as in the demo: three N(0,1) columns, one heavy-tailed."""
    X = rng.normal(size=(ROWS, COLS))
    X[:, 3] = np.clip(rng.standard_t(df=3, size=ROWS), -50.0, 50.0)
    return X


def naive_xt_e(cts: list, X_q: np.ndarray, nsq: mpz) -> list[mpz]:
    """One powmod per term, positives and negatives apart, one inverse per column."""
    out = []
    for j in range(X_q.shape[1]):
        pos, neg = mpz(1), mpz(1)
        for c, x in zip(cts, X_q[:, j].tolist(), strict=True):
            if x > 0:
                pos = pos * gmpy2.powmod(c, x, nsq) % nsq
            elif x < 0:
                neg = neg * gmpy2.powmod(c, -x, nsq) % nsq
        out.append(pos * gmpy2.invert(neg, nsq) % nsq)
    return out


def bench_bits(bits: int, repeats: int) -> dict[str, object]:
    sizes = SIZES[bits]
    crypto_pool.shutdown_pool()
    account = PoolAccount()
    pool = crypto_pool.get_pool()  # a fresh pool per key size, for the CPU account
    pk, sk = generate_keypair(bits, test_only=bits < 2048)  # 1024: benchmark only
    n = mpz(pk.n)
    nsq = n * n
    rng = np.random.default_rng(bits)
    codec = FixedPointCodec()
    res: dict[str, object] = {"bits": bits}

    operands = [mpz(secrets.randbelow(int(nsq))) for _ in range(sizes["mulmod"])]

    def mulmods() -> None:
        acc = operands[0]
        for b in operands:
            acc = acc * b % nsq

    res["mulmod_n2_per_s"] = sizes["mulmod"] / best_time(mulmods, repeats)
    rs = [mpz(1 + secrets.randbelow(int(n) - 1)) for _ in range(sizes["powmod"])]
    res["powmod_rn_per_s"] = sizes["powmod"] / best_time(
        lambda: [gmpy2.powmod(r, n, nsq) for r in rs], repeats)
    res["phe_encrypt_per_s"] = sizes["phe"] / best_time(
        lambda: [pk.raw_encrypt(i) for i in range(sizes["phe"])], repeats)

    start = time.perf_counter()
    enc = DJNEncryptor(pk, pool_size=sizes["online"])
    enc.encrypt_ints([0])  # builds the fixed-base table
    res["djn_setup_s"] = time.perf_counter() - start
    res["djn_exponent_bits"] = enc.exponent_bits
    res["djn_window"] = enc.window
    ms = [secrets.randbelow(int(n)) for _ in range(sizes["djn_pool"])]
    if pool is None:
        res["djn_encrypt_1core_per_s"] = sizes["djn"] / best_time(
            lambda: enc.encrypt_ints(ms[: sizes["djn"]]), repeats)
    else:
        enc.encrypt_ints(ms[:256], pool=pool)  # start workers, build their tables
        account.start()
        cpu, wall, speedup = interleaved(lambda: enc.encrypt_ints(ms),
                                         lambda: enc.encrypt_ints(ms, pool=pool), repeats,
                                         account)
        res["djn_encrypt_1core_per_s"] = sizes["djn_pool"] / cpu
        res["djn_encrypt_pool_wall_per_s"] = sizes["djn_pool"] / wall
        res["djn_pool_speedup"] = speedup
        res["djn_encrypt_pool_per_s"] = res["djn_encrypt_1core_per_s"] * speedup
    online = []
    for _ in range(repeats):
        enc.refill()
        start = time.process_time()
        enc.encrypt_ints(ms[: sizes["online"]])
        online.append(time.process_time() - start)
    res["djn_encrypt_online_per_s"] = sizes["online"] / min(online)
    sweep = {}
    for window in (6, 8, 10):
        other = DJNEncryptor(pk, window=window)
        start = time.perf_counter()
        other.encrypt_ints([0])
        build = time.perf_counter() - start
        rate = sizes["djn"] / best_time(lambda o=other: o.encrypt_ints(ms[: sizes["djn"]]),
                                        repeats)
        sweep[str(window)] = {"table_build_s": build, "encrypt_per_s": rate}
    res["djn_window_sweep"] = sweep

    X = synthetic_features(rng)
    X_q = quantise_features(X, X_FRAC, max_abs=1024.0)
    v = rng.normal(scale=0.5, size=ROWS)
    ev = encrypt_vector(enc, v, codec)
    terms = X_q.size
    res["xt_e_shape"] = [ROWS, COLS]
    res["xt_e_feature_bits_max"] = int(np.abs(X_q).max()).bit_length()
    res["xt_e_windows"] = [crypto_pool.choose_window(np.abs(X_q[:, j][X_q[:, j] != 0]))
                           for j in range(COLS)]
    serial = None

    def run_serial() -> None:
        nonlocal serial
        serial = xt_e(X_q, X_FRAC, ev)

    if pool is None:
        res["xt_e_1core_us_per_term"] = best_time(run_serial, repeats) / terms * 1e6
    else:
        parallel = None

        def run_pool() -> None:
            nonlocal parallel
            parallel = xt_e(X_q, X_FRAC, ev, pool=pool)

        cpu, wall, speedup = interleaved(run_serial, run_pool, repeats, account)
        res["xt_e_1core_us_per_term"] = cpu / terms * 1e6
        res["xt_e_pool_wall_us_per_term"] = wall / terms * 1e6
        res["xt_e_pool_speedup"] = speedup
        res["xt_e_pool_us_per_term"] = res["xt_e_1core_us_per_term"] / speedup
        res["xt_e_pool_identical"] = parallel.ciphertexts == serial.ciphertexts
    k = sizes["naive"]
    naive_sub = naive_xt_e(ev.ciphertexts[:k], X_q[:k], nsq)
    prefix = EncryptedVector(pk, ev.ciphertexts[:k], ev.frac_bits)
    res["naive_identical"] = naive_sub == xt_e(X_q[:k], X_FRAC, prefix).ciphertexts
    res["naive_us_per_term"] = best_time(
        lambda: naive_xt_e(ev.ciphertexts[:k], X_q[:k], nsq), repeats) / (k * COLS) * 1e6

    cts = ev.ciphertexts[: sizes["decrypt"]]
    res["decrypt_crt_per_s"] = sizes["decrypt"] / best_time(lambda: decrypt_ints(sk, cts),
                                                           repeats)
    res["phe_raw_decrypt_per_s"] = sizes["decrypt"] / best_time(
        lambda: [sk.raw_decrypt(int(c)) for c in cts], repeats)

    res["ratio_djn_1core_vs_phe"] = res["djn_encrypt_1core_per_s"] / res["phe_encrypt_per_s"]
    res["ratio_xt_e_1core_vs_naive"] = (res["naive_us_per_term"]
                                        / res["xt_e_1core_us_per_term"])
    if pool is not None:
        res["ratio_djn_pool_vs_phe"] = res["djn_encrypt_pool_per_s"] / res["phe_encrypt_per_s"]
        res["ratio_xt_e_pool_vs_naive"] = (res["naive_us_per_term"]
                                           / res["xt_e_pool_us_per_term"])
        workers = crypto_pool.parallelism(pool)
        res["pool_workers"] = workers
        res["pool_cpu_per_serial_cpu"] = account.ratio()
        crypto_pool.shutdown_pool()
        res["pool_speedup_on_idle_cores_estimate"] = workers / res["pool_cpu_per_serial_cpu"]
        res["load_average_at_end"] = list(os.getloadavg())
    # The demo's per-epoch crypto (DESIGN §4.1): 2 × 20,000 encryptions + 23 columns × 20,000.
    enc_rate = max(res.get("djn_encrypt_pool_per_s", 0.0), res["djn_encrypt_1core_per_s"])
    term_us = min(res.get("xt_e_pool_us_per_term", np.inf), res["xt_e_1core_us_per_term"])
    res["demo_epoch_estimate_s"] = 2 * 20_000 / enc_rate + 23 * 20_000 * term_us / 1e6
    return res


def wall_rate(count: int, fn: Callable[[], object], repeats: int) -> float:
    """Items per wall-clock second, best of ``repeats``."""
    return count / best_time(fn, repeats, wall=True)


def bench_ray(bits: int, repeats: int) -> dict[str, object]:
    """Encryption, ``Xᵀ[[e]]`` and decryption: process pool vs Ray on this machine's cores."""
    from crypto.ray_pool import RayExecutor  # only with --ray: the rest never imports Ray

    sizes = SIZES[bits]
    crypto_pool.shutdown_pool()
    process = crypto_pool.get_pool()
    cores = max(crypto_pool.worker_count(), 1)
    start = time.perf_counter()
    ray_pool = RayExecutor("local", num_cpus=cores)
    res: dict[str, object] = {"bits": bits, "ray_cpus": crypto_pool.parallelism(ray_pool),
                              "ray_start_s": time.perf_counter() - start}
    pk, sk = generate_keypair(bits, test_only=bits < 2048)
    n = int(pk.n)
    enc = DJNEncryptor(pk, pool_size=0)
    ms = [secrets.randbelow(n) for _ in range(sizes["djn_pool"])]
    rng = np.random.default_rng(bits)
    X_q = quantise_features(synthetic_features(rng), X_FRAC, max_abs=1024.0)
    ev = encrypt_vector(enc, rng.normal(scale=0.5, size=ROWS), FixedPointCodec())
    cts = ev.ciphertexts[: sizes["decrypt"] * 4]
    p, q = int(sk.p), int(sk.q)
    pools = {"process": process, "ray": ray_pool}
    try:
        for name, pool in pools.items():
            if pool is None:
                continue
            enc.encrypt_ints(ms[:256], pool=pool)  # start workers, build their tables
            res[f"djn_encrypt_{name}_wall_per_s"] = wall_rate(
                len(ms), lambda pool=pool: enc.encrypt_ints(ms, pool=pool), repeats)
            res[f"xt_e_{name}_wall_us_per_term"] = 1e6 / wall_rate(
                X_q.size, lambda pool=pool: xt_e(X_q, X_FRAC, ev, pool=pool), repeats)
            res[f"decrypt_{name}_wall_per_s"] = wall_rate(
                len(cts), lambda pool=pool: decrypt_batch(p, q, cts, pool=pool), repeats)
        res["xt_e_ray_identical"] = (xt_e(X_q, X_FRAC, ev, pool=ray_pool).ciphertexts
                                     == xt_e(X_q, X_FRAC, ev).ciphertexts)
        res["decrypt_ray_identical"] = decrypt_batch(p, q, cts, pool=ray_pool) == decrypt_ints(
            sk, cts)
        res["ray_tasks"] = ray_pool.tasks_submitted
    finally:
        ray_pool.shutdown()
        crypto_pool.shutdown_pool()
    res["load_average_at_end"] = list(os.getloadavg())
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--ray", choices=("off", "also", "only"), default="off",
                        help="also (or only) compare the process pool with Ray on this machine")
    args = parser.parse_args()

    info = machine_info()
    info["load_average_before"] = list(os.getloadavg())
    started = time.perf_counter()
    results = []
    for bits in args.bits if args.ray != "only" else []:
        res = bench_bits(bits, args.repeats)
        results.append(res)
        print(json.dumps(res, indent=2), flush=True)
    ray_results = [bench_ray(bits, args.repeats) for bits in args.bits if args.ray != "off"]
    for res in ray_results:
        print(json.dumps(res, indent=2), flush=True)
    crypto_pool.shutdown_pool()
    info["load_average_after"] = list(os.getloadavg())
    info["bench_seconds"] = time.perf_counter() - started
    document = {
        "machine": info,
        "method": {
            "repeats": args.repeats,
            "statistic": "best of repeats; in-process figures in CPU time of this process; "
                         "*_pool_wall_* in wall-clock time (inflated by other jobs); "
                         "*_pool_speedup = median wall-clock serial/pool ratio with the two "
                         "interleaved; *_pool_per_s / *_pool_us_per_term = 1-core figure "
                         "scaled by that speedup",
            "pool_cpu_per_serial_cpu": "(pool workers' CPU + this process's CPU during pool "
                                       "runs) / CPU of the same runs done serially; "
                                       "independent of other jobs",
            "xt_e_batch": f"{ROWS} rows x {COLS} standardised features at {X_FRAC} "
                          "fractional bits; naive measured on a prefix of the same batch",
        },
        "results": results,
    }
    if ray_results:
        document["ray"] = ray_results
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
