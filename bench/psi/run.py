"""Benchmark ECDH-PSI (crypto.psi) against libsodium's own per-item cost.

What it measures, on N synthetic valid USCCs per side with 50 % overlap:

* ``hash+blind`` — :meth:`PsiParty.blind_own` (normalise, SHA-512, Elligator 2,
  Edwards → Montgomery, X25519) on one side's N ids;
* ``blind_other`` — :meth:`PsiParty.blind_other` (point checks, X25519) on
  the other side's N points;
* ``end_to_end`` — one side's whole share of a run (both of the above);

each with 1 worker and with every core, reported as items/s **per side per
core** (N / seconds / workers used). The floor of each step is libsodium's
own cost for the calls that step makes per item — ``from_uniform`` and
``crypto_scalarmult`` in a tight loop on precomputed inputs, measured in the
same run right before and after, with as many busy processes — so
``ratio = ours / floor`` says how much the Python around libsodium costs
(the goal: ratio ≥ 1/1.3). ``end_to_end`` is also compared with FATE 2.x's
Rust Curve25519 PSI, 6,900 items/s per side per core on this machine class.

The run also checks the result: the intersection has exactly N/2 rows, each
pair has equal ids, and the pool gives the same tokens as one worker.

Usage (from the repository root)::

    .venv/bin/python bench/psi/run.py              # N = 1,000,000 per side, ~9 minutes on 2 cores
    .venv/bin/python bench/psi/run.py --n 20000    # a quick look -> results_n20000.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

import nacl
import nacl.bindings as sodium
import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make `crypto` importable
    sys.path.insert(0, str(REPO))

from crypto.identifiers import check_ids, organisation_code_is_valid, uscc_check_char  # noqa: E402
from crypto.psi import PsiParty, _plan_workers, hash_to_group, intersect  # noqa: E402

HERE = Path(__file__).resolve().parent
P = ParamSpec("P")
R = TypeVar("R")
FATE_FIGURE = 6900  # FATE 2.x's Rust Curve25519 PSI: items/s per side per core (DESIGN.md §5)


# --------------------------------------------------------------------------- data


def _org_code(body: str) -> str:
    """Append the GB 11714 check character to an 8-digit body."""
    total = sum(int(c) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def synthetic_usccs(count: int, seed: int) -> list[str]:
    """``count`` distinct valid USCCs: 91 + a Tianjin district + a valid org code."""
    rng = np.random.default_rng(seed)
    districts = [f"1201{d:02d}" for d in range(1, 17)]
    out: dict[str, None] = {}
    while len(out) < count:
        need = count - len(out)
        bodies = rng.integers(0, 10**8, size=need)
        picks = rng.integers(0, len(districts), size=need)
        for body, pick in zip(bodies.tolist(), picks.tolist(), strict=True):
            first17 = "91" + districts[pick] + _org_code(f"{body:08d}")
            out[first17 + uscc_check_char(first17)] = None
    codes = list(out)
    assert all(organisation_code_is_valid(c[8:17]) for c in codes[:100])
    return codes


def make_sides(n: int, seed: int = 20240601) -> tuple[list[str], list[str]]:
    """Two shuffled sides of n ids each, sharing exactly n // 2 ids."""
    pool = synthetic_usccs(n + (n - n // 2), seed)
    side_a = pool[:n]
    side_b = pool[n - n // 2 :]
    rng = np.random.default_rng(seed + 1)
    return [side_a[i] for i in rng.permutation(n)], [side_b[i] for i in rng.permutation(n)]


# --------------------------------------------------------------------------- measurements


def _timed(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[R, float]:
    """Call ``fn`` and return its result with the wall-clock seconds it took."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def _cpu_timed(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[R, float]:
    """Call ``fn`` and return its result with the CPU seconds this process spent.

    On a shared machine, other jobs stretch wall-clock time but not our CPU
    time, so in-process rates per CPU-second are the stable figures.
    """
    started = time.process_time()
    result = fn(*args, **kwargs)
    return result, time.process_time() - started


def measure_floor(count: int, repeats: int = 3) -> dict[str, float]:
    """libsodium's own per-item rates on one core, for each call the protocol makes.

    ``from_uniform`` (Elligator 2 + cofactor clearing) and ``crypto_scalarmult``
    (X25519) on precomputed inputs in a tight loop: no implementation of this
    protocol through libsodium can do an item faster. Also, for reference, the
    multiplication of the group used before (ed25519 with its subgroup check).
    Best of ``repeats`` after a warm-up, as timeit does: the floor is what the
    library can do, so noise should not lower it.
    """
    scalar = PsiParty.new_secret()
    uniforms = [hashlib.sha512(i.to_bytes(8, "little")).digest()[:32] for i in range(count)]
    from_uniform = sodium.crypto_core_ed25519_from_uniform
    x25519 = sodium.crypto_scalarmult
    ed25519 = sodium.crypto_scalarmult_ed25519_noclamp
    edwards = [from_uniform(u) for u in uniforms]  # also the warm-up
    points = [hash_to_group(str(i)) for i in range(count)]
    ed_scalar = sodium.crypto_core_ed25519_scalar_reduce(scalar + bytes(32))
    best = {"from_uniform": float("inf"), "x25519": float("inf"), "ed25519": float("inf")}
    best_cpu = dict(best)
    for _ in range(repeats):
        for name, work in (
            ("from_uniform", lambda: [from_uniform(u) for u in uniforms]),
            ("x25519", lambda: [x25519(scalar, p) for p in points]),
            ("ed25519", lambda: [ed25519(ed_scalar, p) for p in edwards]),
        ):
            (_, cpu), seconds = _timed(_cpu_timed, work)
            best[name], best_cpu[name] = min(best[name], seconds), min(best_cpu[name], cpu)
    return {
        "items": count,
        "repeats": repeats,
        "from_uniform_items_per_s": count / best["from_uniform"],
        "x25519_items_per_s": count / best["x25519"],
        "x25519_items_per_cpu_s": count / best_cpu["x25519"],
        "from_uniform_items_per_cpu_s": count / best_cpu["from_uniform"],
        "reference_ed25519_noclamp_items_per_s": count / best["ed25519"],
    }


def floor_rates(raw: dict[str, float], unit: str = "items_per_s") -> dict[str, float]:
    """Per-step floor rates from the raw ones: the libsodium calls each step makes per item.

    hash_blind = one map + one multiplication; blind_other = one multiplication;
    end_to_end (one side's share of a run) = both.
    """
    t_map = 1 / raw[f"from_uniform_{unit}"]
    t_mult = 1 / raw[f"x25519_{unit}"]
    return {
        "hash_blind": 1 / (t_map + t_mult),
        "blind_other": 1 / t_mult,
        "end_to_end": 1 / (t_map + 2 * t_mult),
    }


def _floor_worker(count: int) -> dict[str, float]:
    """Raw rates in one process (module-level so pool workers can import it)."""
    return measure_floor(count)


def floor_per_core(count: int, workers: int) -> dict[str, float]:
    """Per-step floor items/s per core with ``workers`` processes busy at once."""
    if workers == 1:
        return floor_rates(measure_floor(count))
    per_process = [floor_rates(raw) for raw in measure_floor_all_cores(count, workers)]
    return {k: float(np.mean([rates[k] for rates in per_process])) for k in per_process[0]}


def measure_floor_all_cores(count: int, workers: int) -> list[dict[str, float]]:
    """Raw rates per process while ``workers`` processes run at once.

    Cores of a virtual machine share caches, memory bandwidth and sometimes a
    physical core, so a core under full load is slower than a lone core; the
    all-cores PSI run is compared with this figure.
    """
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_floor_worker, [count] * workers))


def run_protocol(
    side_a: list[str], side_b: list[str], secrets: tuple[bytes, bytes], workers: int
) -> dict[str, object]:
    """One full two-party run with ``workers`` processes per step; returns timings."""
    party_a, party_b = PsiParty(secrets[0]), PsiParty(secrets[1])
    n = len(side_a)
    used = _plan_workers(n, workers)  # small batches run in-process whatever was asked
    (a1, c_own_a), t_own_a = _timed(_cpu_timed, party_a.blind_own, side_a, workers=workers)
    (b1, c_own_b), t_own_b = _timed(_cpu_timed, party_b.blind_own, side_b, workers=workers)
    (a2, c_other_a), t_other_a = _timed(_cpu_timed, party_b.blind_other, a1, workers=workers)
    (b2, c_other_b), t_other_b = _timed(_cpu_timed, party_a.blind_other, b1, workers=workers)
    (idx_a, idx_b), t_intersect = _timed(intersect, a2, b2)
    if len(idx_a) != n // 2 or any(
        side_a[i] != side_b[j] for i, j in zip(idx_a, idx_b, strict=True)
    ):
        raise SystemExit(f"wrong intersection: {len(idx_a)} rows, expected {n // 2}")
    per_core = {
        "hash_blind": n / ((t_own_a + t_own_b) / 2) / used,
        "blind_other": n / ((t_other_a + t_other_b) / 2) / used,
        "end_to_end": n / ((t_own_a + t_own_b + t_other_a + t_other_b) / 2) / used,
    }
    result: dict[str, object] = {
        "workers": used,
        "workers_requested": workers,
        "seconds": {
            "hash_blind_side_a": t_own_a,
            "hash_blind_side_b": t_own_b,
            "blind_other_side_a_ids": t_other_a,
            "blind_other_side_b_ids": t_other_b,
            "intersect": t_intersect,
        },
        "items_per_s_per_side_per_core": per_core,
        "intersection_rows": int(len(idx_a)),
        "tokens_sha256": hashlib.sha256(a2.tobytes() + b2.tobytes()).hexdigest(),
    }
    if used == 1:  # all work is in this process, so its CPU time is the work's
        result["items_per_cpu_s_per_side"] = {
            "hash_blind": n / ((c_own_a + c_own_b) / 2),
            "blind_other": n / ((c_other_a + c_other_b) / 2),
            "end_to_end": n / ((c_own_a + c_own_b + c_other_a + c_other_b) / 2),
        }
    return result


def machine_info() -> dict[str, object]:
    """CPU, cores and versions, so figures from different machines are not mixed up."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "pynacl": nacl.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": _load_average(),
    }


def _load_average() -> list[float] | None:
    """1/5/15-minute load: other work on a shared machine slows every figure."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _contention_warning(info: dict, result: dict, cores: int) -> str | None:
    """Say so when other jobs shared the machine: wall-clock figures are then low."""
    loads = [info["load_average_at_start"], result["load_average_at_end"]]
    loads += [run["load_average_after"] for run in result["runs"]]
    peak = max((load[0] for load in loads if load), default=0.0)
    if peak <= 0.5 * cores:
        return None
    return (
        f"1-minute load reached {peak:.1f} on {cores} cores during this run: other jobs "
        "shared the CPUs, so wall-clock items/s (and most of all the all-cores run) are "
        "understated. items_per_cpu_s_per_side and ratio_to_floor_cpu_time are unaffected."
    )


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000,
                        help="ids per side (default 1000000)")
    parser.add_argument("--workers", type=int, default=None, help="all-cores run (default: all)")
    parser.add_argument("--floor-items", type=int, default=10_000, help="items per floor repeat")
    parser.add_argument("--out", type=Path, default=None, help="results file")
    args = parser.parse_args(argv)

    info = machine_info()
    all_cores = args.workers or int(info["usable_cores"] or 1)
    out = args.out or HERE / ("results.json" if args.n == 1_000_000 else f"results_n{args.n}.json")
    started = time.perf_counter()

    (side_a, side_b), t_data = _timed(make_sides, args.n)
    reports, t_check = _timed(lambda: [check_ids(side_a, "uscc"), check_ids(side_b, "uscc")])
    if any(r.invalid or r.duplicates for r in reports):
        raise SystemExit("synthetic ids are not all valid and distinct")
    print(f"data: {args.n} ids per side in {t_data:.1f}s, check_ids {t_check:.1f}s", flush=True)

    floor = measure_floor(args.floor_items)  # one core, idle partner: the reference floor
    print(f"floor: {floor}", flush=True)
    secrets = (PsiParty.new_secret(), PsiParty.new_secret())
    runs = []
    for workers in sorted({1, all_cores}):
        # The floor is measured right before and after each run with the same
        # number of busy processes, so load from other jobs on a shared machine
        # hits both sides of the ratio alike.
        used = _plan_workers(args.n, workers)
        before = floor_per_core(args.floor_items, used)
        run = run_protocol(side_a, side_b, secrets, workers)
        after = floor_per_core(args.floor_items, used)
        rates = run["items_per_s_per_side_per_core"]
        floor_here = {k: (before[k] + after[k]) / 2 for k in before}
        run["floor_items_per_s_per_core"] = {"before": before, "after": after,
                                              "mean": floor_here}
        run["ratio_to_floor"] = {k: rates[k] / floor_here[k] for k in rates}
        run["end_to_end_vs_fate"] = rates["end_to_end"] / FATE_FIGURE
        if "items_per_cpu_s_per_side" in run:
            cpu_rates = run["items_per_cpu_s_per_side"]
            cpu_floor = floor_rates(floor, "items_per_cpu_s")
            run["ratio_to_floor_cpu_time"] = {k: v / cpu_floor[k] for k, v in cpu_rates.items()}
        run["load_average_after"] = _load_average()
        runs.append(run)
        print(
            f"workers={used} (asked {workers}): {rates} ratio {run['ratio_to_floor']}", flush=True
        )
    if len({r["tokens_sha256"] for r in runs}) != 1:
        raise SystemExit("pool and single-worker tokens differ")
    for run in runs:
        run["tokens_equal_across_worker_counts"] = True

    result = {
        "benchmark": "crypto.psi ECDH-PSI, Curve25519 prime-order subgroup by X25519 via PyNaCl",
        "machine": info,
        "params": {
            "n_per_side": args.n,
            "overlap": 0.5,
            "id_kind": "uscc (synthetic, valid GB 32100 and GB 11714)",
            "all_cores_workers": all_cores,
        },
        "units": (
            "items/s per side per core = N / mean(wall seconds of the two sides) / workers; "
            "items_per_cpu_s: the same per CPU-second of this process (1-worker run only), "
            "which load from other jobs on a shared machine does not inflate"
        ),
        "check_ids_items_per_s": 2 * args.n / t_check,
        "floor": floor,
        "fate_end_to_end_per_side_per_core": FATE_FIGURE,
        "goal": {"end_to_end_per_side_per_core": FATE_FIGURE, "max_floor_ratio": 1.3},
        "runs": runs,
        "total_seconds": time.perf_counter() - started,
        "load_average_at_end": _load_average(),
    }
    result["contention_warning"] = _contention_warning(info, result, all_cores)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return result


if __name__ == "__main__":
    main()
