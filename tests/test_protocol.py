"""The hetero-LR protocol driven in-process (no Flower): accuracy, privacy, bad input.

Keys here are 1024-bit and test-only (``examples/breast.toml`` says so):
they make the suite fast; real runs use 2048 bits.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from crypto.paillier import private_key_from_json
from federation.driver import Coordinator, RunResult
from federation.ledger import AGGREGATE_MAX, KeyDirectory, LedgerEntry, PrivacyLedger
from federation.payload import Payload
from federation.transport import InProcessTransport, PartyFailed
from lab.experiment import load_experiment
from lab.reference import central_references

ROOT = Path(__file__).resolve().parents[1]
BREAST = ROOT / "examples" / "breast.toml"


def run_in_process(experiment_path: Path, run_dir: Path, *, capture: bool = False) -> RunResult:
    experiment = load_experiment(experiment_path)
    coordinator = Coordinator(InProcessTransport(), experiment, run_dir, run_key="test",
                              capture=capture)
    return coordinator.run()


@pytest.fixture(scope="module")
def breast_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    run_dir = tmp_path_factory.mktemp("breast_run")
    return run_in_process(BREAST, run_dir, capture=True), run_dir


def test_vertical_run_matches_central_taylor_reference(breast_run) -> None:
    result, run_dir = breast_run
    experiment = load_experiment(BREAST)
    refs = central_references(experiment, run_dir / "bank", result.best_epoch + 1)
    assert result.metrics["test_auc"] > 0.95
    assert abs(result.metrics["test_auc"] - refs["centralized_taylor_test_auc"]) <= 0.003
    assert refs["centralized_test_auc"] > 0.95


def test_weights_equal_central_taylor_weights(breast_run) -> None:
    """Not just the AUC: the parts' weights are the central model's, to codec precision."""
    from models.persistence import load_part

    result, run_dir = breast_run
    experiment = load_experiment(BREAST)
    bank_part, _, _ = load_part(run_dir / "bank" / "model")
    platform_part, _, _ = load_part(run_dir / "platform" / "model")
    from lab.reference import _joined, _standardised
    from models.lr import fit_central_taylor

    X_bank, X_platform, y, split = _joined(experiment, run_dir / "bank")
    train = split["train"]
    X = np.hstack([_standardised(X_bank, train), _standardised(X_platform, train)])
    central = fit_central_taylor(X[train], y[train], [f"f{i}" for i in range(X.shape[1])],
                                 optimizer=experiment.train.optimizer_config(),
                                 batch_size=experiment.train.batch_size,
                                 seed=experiment.experiment.seed, epochs=result.best_epoch + 1)
    federated = np.concatenate([bank_part.weights, platform_part.weights])
    np.testing.assert_allclose(federated, central.weights, atol=1e-4)
    assert bank_part.intercept == pytest.approx(central.intercept, abs=1e-4)


def test_ledger_has_no_plaintext_and_records_every_kind(breast_run) -> None:
    result, _ = breast_run
    ledger = result.ledger.to_json()
    assert ledger["plaintext_violations"] == 0, ledger["violations"]
    kinds = {row["kind"] for row in ledger["summary"]}
    assert {"ciphertext", "masked", "aggregate", "psi-token", "id-list", "public-key",
            "inference-partial-scores"} <= kinds
    # Every training message between the parties is a ciphertext or masked.
    for entry in result.ledger.entries:
        if entry.phase == "train" and entry.dst in ("bank", "platform"):
            assert {a.kind for a in entry.arrays} <= {"ciphertext", "masked", "aggregate"}


def test_coordinator_never_holds_a_private_key(breast_run) -> None:
    """Neither prime of either key appears in any byte the coordinator relayed."""
    result, run_dir = breast_run
    blob = b"".join(a.tobytes() for p in result.ledger.captured for a in p.arrays.values())
    blob += json.dumps([{k: str(v) for k, v in p.meta.items()}
                        for p in result.ledger.captured]).encode()
    for role in ("bank", "platform"):
        text = (run_dir / role / "paillier_key.json").read_text()
        _, sk = private_key_from_json(text, test_only=True)
        for prime in (int(sk.p), int(sk.q)):
            raw = prime.to_bytes((prime.bit_length() + 7) // 8, "big")
            assert raw not in blob
            assert format(prime, "x").encode() not in blob


def _entry(phase: str, message_type: str, src: str, dst: str) -> LedgerEntry:
    return LedgerEntry(seq=0, phase=phase, message_type=message_type, src=src, dst=dst)


@pytest.mark.parametrize(
    ("phase", "name", "array", "kind"),
    [
        ("train", "labels", np.random.default_rng(0).integers(0, 2, 400).astype(float),
         "aggregate"),
        ("train", "residuals", np.random.default_rng(1).normal(size=400), "ciphertext"),
        ("train", "residuals", np.zeros((400, 256), np.uint8), "ciphertext"),
        ("train", "u_p", np.random.default_rng(2).normal(size=400), "inference-partial-scores"),
        ("inference", "u_p", np.random.default_rng(2).normal(size=400),
         "inference-partial-scores"),
        ("train", "feature", np.random.default_rng(3).normal(size=400), "masked"),
        ("train", "x", np.ones(10), "undeclared"),
        ("train", "ids", np.arange(400), "id-list"),
    ],
)
def test_ledger_check_catches_a_leaking_message(phase, name, array, kind) -> None:
    ledger = PrivacyLedger(KeyDirectory(fingerprints={"bank": "b" * 32, "platform": "p" * 32},
                                        ciphertext_bytes={"bank": 256, "platform": 256}))
    payload = Payload().put(name, array, kind)
    payload.meta[f"{name}.fingerprint"] = "b" * 32
    ledger.record(phase, "train.cross", "bank", "platform", payload)
    assert ledger.violations, f"{kind} {array.dtype} {array.shape} passed the check"
    assert len(array) > AGGREGATE_MAX or kind in ("undeclared", "id-list")


def test_masks_are_fresh_and_wide(breast_run) -> None:
    from federation.hetero_lr import MASK_MARGIN_BITS
    from federation.session import open_session

    _, run_dir = breast_run
    session = open_session(run_dir / "platform")
    party = session.party
    rows = session.arrays["train"][:64]
    bank = open_session(run_dir / "bank")
    residuals = bank.party.encrypt_residuals(rows)
    party.encrypt_quarter_logits(rows)
    party.masked_gradient(residuals)
    first = list(party.pending.mask)
    party.masked_gradient(residuals)
    second = list(party.pending.mask)
    assert all(a != b for a, b in zip(first, second, strict=True))
    bits = party.mask_bits(len(rows))
    assert MASK_MARGIN_BITS >= 40
    from crypto.codec import max_plain_bits
    from federation.hetero_lr import FEATURE_FRAC_BITS, FEATURE_MAX_ABS

    largest = max_plain_bits(len(rows), FEATURE_MAX_ABS, party.codec.max_abs,
                             party.codec.frac_bits + FEATURE_FRAC_BITS)
    assert bits - largest >= 40
    assert max(first).bit_length() > largest + 30  # drawn across the whole width


def _write_experiment(tmp_path: Path, **overrides: str) -> Path:
    """A copy of the breast experiment with data copied to tmp, columns overridable."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for role in ("bank", "platform"):
        shutil.copy(ROOT / "data" / "breast" / f"{role}.csv", data / f"{role}.csv")
    text = BREAST.read_text().replace("../data/breast/", "data/")
    for old, new in overrides.items():
        text = text.replace(old, new)
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def _edit_csv(path: Path, edit) -> None:
    import pandas as pd

    edit(pd.read_csv(path, dtype=str)).to_csv(path, index=False)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: _edit_csv(p / "data/bank.csv", lambda f: f.drop(columns=["y"])),
         ["bank.csv", "'y'", "label_column"]),
        (lambda p: _edit_csv(p / "data/bank.csv", lambda f: f.assign(y="1")),
         ["bank.csv", "'y'", "both defaults"]),
        (lambda p: _edit_csv(p / "data/platform.csv",
                             lambda f: f.assign(x3=f["x3"].where(f.index != 5, "abc"))),
         ["platform.csv", "'x3'", "row 7"]),
        (lambda p: _edit_csv(p / "data/platform.csv", lambda f: f.assign(x4="2.5")),
         ["platform.csv", "'x4'", "same value on every"]),
        (lambda p: _edit_csv(p / "data/bank.csv", lambda f: f.assign(x1="")),
         ["bank.csv", "'x1'"]),
        (lambda p: _edit_csv(p / "data/platform.csv",
                             lambda f: f.rename(columns={"id": "uid"})),
         ["platform.csv", "'id'", "uid"]),
    ],
    ids=["missing-label", "one-class", "non-numeric", "constant", "all-missing", "id-name"],
)
def test_bad_input_stops_with_a_clear_error(tmp_path: Path, setup, expected) -> None:
    path = _write_experiment(tmp_path)
    setup(tmp_path)
    with pytest.raises(PartyFailed) as info:
        run_in_process(path, tmp_path / "run")
    message = str(info.value)
    for fragment in expected:
        assert fragment.lower() in message.lower(), message


def test_masked_products_are_rerandomised_before_they_leave(breast_run) -> None:
    """The key owner must not be able to read our features from the ciphertext randomness."""
    from crypto.vector import add_mask, decrypt_residues, pack, xt_e
    from federation.hetero_lr import FEATURE_FRAC_BITS
    from federation.session import open_session

    _, run_dir = breast_run
    platform, bank = open_session(run_dir / "platform"), open_session(run_dir / "bank")
    rows = platform.arrays["train"][:64]
    residuals = bank.party.encrypt_residuals(rows)
    platform.party.encrypt_quarter_logits(rows)
    sent, _ = platform.party.masked_gradient(residuals)
    mask = platform.party.pending.mask
    slot_bits = platform.party.mask_bits(len(rows)) + 1
    deterministic = pack(add_mask(xt_e(platform.party._quantised(platform.party.X[rows]),
                                       FEATURE_FRAC_BITS, residuals), mask), slot_bits)
    assert decrypt_residues(bank.private_key, sent) == decrypt_residues(bank.private_key,
                                                                        deterministic)
    assert all(a != b for a, b in zip(sent.ciphertexts, deterministic.ciphertexts, strict=True))


def test_masked_products_travel_packed_and_unpack_exactly(breast_run) -> None:
    """Several masked entries per ciphertext; the owner recovers exactly Xᵀd (integers)."""
    from crypto.vector import decrypt_residues, slots_per_ciphertext, unpack, xt_e
    from federation.hetero_lr import FEATURE_FRAC_BITS, MASK_MARGIN_BITS
    from federation.session import open_session

    _, run_dir = breast_run
    platform, bank = open_session(run_dir / "platform"), open_session(run_dir / "bank")
    rows = platform.arrays["train"][:64]
    residuals = bank.party.encrypt_residuals(rows)
    platform.party.encrypt_quarter_logits(rows)
    sent, _ = platform.party.masked_gradient(residuals)
    features = platform.party.X.shape[1]
    n = bank.public_key.n
    slot_bits = platform.party.mask_bits(len(rows)) + 1
    per = slots_per_ciphertext(n, slot_bits)
    assert per >= 2 and len(sent) == -(-features // per) < features
    seen = decrypt_residues(bank.private_key, sent)  # all the key owner ever sees
    values = unpack(seen, features, slot_bits, n)
    mask = platform.party.pending.mask
    largest = platform.party.mask_bits(len(rows)) - MASK_MARGIN_BITS
    assert all(0 <= v < 1 << slot_bits for v in values)
    assert all(m >= 1 << largest for m in mask)  # the offset that keeps slots non-negative
    exact = xt_e(platform.party._quantised(platform.party.X[rows]), FEATURE_FRAC_BITS,
                 residuals)
    expected = [(r % n) for r in decrypt_residues(bank.private_key, exact)]
    assert [(v - m) % n for v, m in zip(values, mask, strict=True)] == expected
