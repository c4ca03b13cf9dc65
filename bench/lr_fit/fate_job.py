"""FATE 2.2's coordinated LR on default_credit — run by ``fate_side_by_side.py``, in FATE's venv.

Not part of CreditLab: this file imports ``fate`` (``pip install pyfate==2.2.0
pandas==2.2.2`` in a venv of its own; FATE needs pandas 2.2, CreditLab does
not) and runs FATE's own pipeline — reader → ECDH PSI (curve25519) →
coordinated LR — with the configuration of ``docs/FATE_REFERENCE.md``:
guest = the bank's file with labels, host = the platform's, arbiter = the key
holder; Paillier 1024 bits, fixed-point precision 2^23, batch 10,000, rmsprop
lr 0.12 with L2 α 0.1, linear scheduler (0.7, 1,000), early stop "diff" 1e-5,
16 epochs, random-uniform start. FATE's multiprocess launcher runs one process
per party (``--parties guest:9999 host:10000 arbiter:10000``). The guest
writes ``guest.json`` (fit seconds, epochs, AUC and KS on the training data,
as FATE evaluates) into ``$CREDITLAB_FATE_OUT``.
"""

import json
import os
import time
from pathlib import Path

import pandas as pd
from fate.arch.launchers.multiprocess_launcher import launch

DATA = Path(os.environ["CREDITLAB_FATE_DATA"])
OUT = Path(os.environ["CREDITLAB_FATE_OUT"])
CONFIG = {
    "epochs": 16, "batch_size": 10_000, "early_stop": "diff", "tol": 1e-5,
    "optimizer": {"method": "rmsprop", "penalty": "l2", "alpha": 0.1,
                  "optimizer_params": {"lr": 0.12}},
    "scheduler": {"method": "linear", "scheduler_params": {"start_factor": 0.7,
                                                           "total_iters": 1000}},
    "init": {"method": "random_uniform", "fit_intercept": True},
    "he": {"kind": "paillier", "key_length": 1024}, "floating_point_precision": 23,
}


def read_frame(ctx, path: Path, label: str | None):
    from fate.arch.dataframe import PandasReader

    frame = pd.read_csv(path, dtype={"id": str})
    frame.insert(0, "sample_id", frame["id"])
    reader = PandasReader(sample_id_name="sample_id", match_id_name="id", label_name=label,
                          label_type="int32", dtype="float32")
    return reader.to_frame(ctx, frame)


def run(ctx) -> None:
    from fate.arch.protocol.psi import psi_run
    from fate.ml.glm import (
        CoordinatedLRModuleArbiter,
        CoordinatedLRModuleGuest,
        CoordinatedLRModuleHost,
    )

    ctx.cipher.set_phe(ctx.device, CONFIG["he"])
    common = {"epochs": CONFIG["epochs"], "batch_size": CONFIG["batch_size"],
              "optimizer_param": CONFIG["optimizer"],
              "learning_rate_param": CONFIG["scheduler"]}
    if ctx.is_on_arbiter:
        CoordinatedLRModuleArbiter(early_stop=CONFIG["early_stop"], tol=CONFIG["tol"],
                                   **common).fit(ctx.sub_ctx("train"))
        return
    guest = ctx.is_on_guest
    data = read_frame(ctx, DATA / ("bank.csv" if guest else "platform.csv"),
                      "y" if guest else None)
    started = time.perf_counter()
    data = psi_run(ctx.sub_ctx("psi"), data, "ecdh_psi", "curve25519")
    psi_seconds = time.perf_counter() - started
    module_class = CoordinatedLRModuleGuest if guest else CoordinatedLRModuleHost
    extra = {"threshold": 0.5} if guest else {}
    module = module_class(init_param=CONFIG["init"],
                          floating_point_precision=CONFIG["floating_point_precision"],
                          **common, **extra)
    started = time.perf_counter()
    module.fit(ctx.sub_ctx("train"), data)
    fit_seconds = time.perf_counter() - started
    predicted = module.predict(ctx.sub_ctx("predict"), data)
    if not guest:
        return
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = predicted.as_pd_df()
    y, s = scores["label"].astype(float).to_numpy(), scores["predict_score"].astype(float)
    fpr, tpr, _ = roc_curve(y, s)
    import fate

    (OUT / "guest.json").write_text(json.dumps({
        "rows": int(len(scores)), "psi_seconds": psi_seconds, "fit_seconds": fit_seconds,
        "end_epoch": int(module.estimator.end_epoch),
        "converged": bool(module.estimator.is_converged),
        "auc_training_data": float(roc_auc_score(y, s)),
        "ks_training_data": float(np.max(tpr - fpr)),
        "config": CONFIG, "pyfate": getattr(fate, "__version__", "2.2.0"),
        "pandas": pd.__version__}, indent=2))


if __name__ == "__main__":
    launch(run)
