"""FATE 2.2 and CreditLab on the same job, the same data, the same machine, one run.

``run.py`` holds our fit time against FATE's 858 s from FATE_REFERENCE.md,
which was measured elsewhere under other load; this script measures FATE
here, right after our own run, so the ratio comes from one run. Both fit
default_credit (30,000 rows; bank 13 features + labels, platform 10) with
FATE's configuration at 1024-bit keys — see ``fate_job.py`` for FATE's side —
and both are scored the way FATE scores: AUC and KS on the training data
(FATE has no held-out split; ours is reported on all 30,000 rows).

FATE runs in a venv of its own (it pins pandas 2.2)::

    python3 -m venv /tmp/fate-venv
    /tmp/fate-venv/bin/pip install pyfate==2.2.0 pandas==2.2.2

Usage (from the repository root; ≈ 10 min on 2 cores, FATE takes most)::

    .venv/bin/python bench/lr_fit/fate_side_by_side.py --fate-python /tmp/fate-venv/bin/python

Writes ``fate_side_by_side.json`` beside this file. FATE's processes run in
their own process group and are stopped with it if it overruns ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as ours  # noqa: E402  (bench/lr_fit/run.py: the main job, timed)


def run_fate(python: str, workdir: Path, timeout: float) -> dict[str, object]:
    """FATE's job through its multiprocess launcher; the guest's result."""
    out = workdir / "fate_out"
    out.mkdir()
    env = {**os.environ, "CREDITLAB_FATE_DATA": str(ours.DATA), "CREDITLAB_FATE_OUT": str(out)}
    command = [python, str(HERE / "fate_job.py"), "--parties", "guest:9999", "host:10000",
               "arbiter:10000", "--data_dir", str(workdir / "fate_storage"),
               "--log_level", "WARNING"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=workdir, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise SystemExit(f"FATE did not finish within {timeout:.0f} s; its processes were "
                         "stopped") from None
    if process.returncode != 0 or not (out / "guest.json").exists():
        raise SystemExit(f"FATE's job failed (exit {process.returncode}):\n{log[-3000:]}")
    result = json.loads((out / "guest.json").read_text())
    result["wall_seconds"] = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fate-python", default=os.environ.get("CREDITLAB_FATE_PYTHON"),
                        required="CREDITLAB_FATE_PYTHON" not in os.environ,
                        help="python of a venv with pyfate==2.2.0 (see the module doc)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--out", type=Path, default=HERE / "fate_side_by_side.json")
    args = parser.parse_args()
    info = ours.machine_info()
    info["load_average_before"] = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="fate_sbs_") as tmp:
        workdir = Path(tmp)
        mine = ours.run_once(1024, 16, workdir, "fast")
        info["load_average_between"] = list(os.getloadavg())
        fate = run_fate(args.fate_python, workdir, args.timeout)
    info["load_average_after"] = list(os.getloadavg())
    creditlab = {"fit_seconds": mine["fit_seconds"], "job_seconds": mine["job_seconds"],
                 "epochs_run": mine["epochs_run"], "auc_all_rows": mine["auc"]["auc_all_rows"],
                 "ks_all_rows": mine["auc"]["ks_all_rows"],
                 "auc_held_out_test": mine["auc"].get("auc_test_rows")}
    document = {
        "benchmark": "default_credit, FATE's coordinated-LR configuration, 1024-bit keys: "
                     "FATE 2.2 and CreditLab in one run on one machine",
        "machine": info,
        "creditlab": creditlab,
        "fate": fate,
        "ratios": {
            "fit_creditlab_over_fate": creditlab["fit_seconds"] / fate["fit_seconds"],
            "auc_creditlab_minus_fate": creditlab["auc_all_rows"] - fate["auc_training_data"],
            "ks_creditlab_minus_fate": creditlab["ks_all_rows"] - fate["ks_training_data"]},
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({"creditlab": creditlab, "fate": {k: fate[k] for k in (
        "fit_seconds", "end_epoch", "converged", "auc_training_data", "ks_training_data")},
        "ratios": document["ratios"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
