"""A party process that dies mid-run: re-sent messages are acted on exactly once.

The coordinator re-sends a message a party has not answered (see
``FlowerTransport``); these tests drive the same sessions in-process and kill
a party's in-memory state at chosen points, then check the run still ends
with exactly the model of an uninterrupted run (1024-bit test-only keys).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federation.driver import Coordinator
from federation.node import PartyNode
from federation.session import PartySession, forget_session
from federation.transport import InProcessTransport, PartyFailed
from lab.experiment import load_experiment
from models.persistence import load_part

BREAST = Path(__file__).resolve().parents[1] / "examples" / "breast.toml"


class KillingTransport(InProcessTransport):
    """Kills one party's process state at one sequence number, then re-sends like Flower's."""

    def __init__(self, role: str, seq: int, *, after_acting: bool) -> None:
        super().__init__()
        self.role, self.seq, self.after_acting = role, seq, after_acting
        self.killed = False

    def exchange(self, requests):
        seq = next(iter(requests.values()))[1].meta["seq"]
        if seq == self.seq and self.role in requests:
            node: PartyNode = self.nodes[self.role]
            message_type, payload = requests[self.role]
            directory = node.party_dir(payload.meta)
            if self.after_acting:  # acted and saved, but the reply never arrived
                node.handle(message_type, payload)
            forget_session(directory)  # the process is gone: memory lost, disk kept
            self.killed = True
        return super().exchange(requests)  # the coordinator's re-send


def _weights(run_dir: Path) -> np.ndarray:
    bank, _, _ = load_part(run_dir / "bank" / "model")
    platform, _, _ = load_part(run_dir / "platform" / "model")
    return np.concatenate([bank.weights, [bank.intercept], platform.weights])


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, float]:
    run_dir = tmp_path_factory.mktemp("baseline")
    result = Coordinator(InProcessTransport(), load_experiment(BREAST), run_dir,
                         run_key="r").run()
    return _weights(run_dir), result.metrics["test_auc"]


@pytest.mark.parametrize("after_acting", [False, True], ids=["before-acting", "after-acting"])
@pytest.mark.parametrize(("role", "seq"),
                         [("platform", 8), ("bank", 9), ("platform", 16), ("bank", 18)])
def test_a_killed_party_resumes_to_the_same_model(tmp_path: Path, baseline, role, seq,
                                                  after_acting) -> None:
    transport = KillingTransport(role, seq, after_acting=after_acting)
    result = Coordinator(transport, load_experiment(BREAST), tmp_path, run_key="r").run()
    assert transport.killed
    weights, auc = baseline
    np.testing.assert_array_equal(_weights(tmp_path), weights)
    assert result.metrics["test_auc"] == auc


def test_a_repeated_message_returns_the_stored_reply(tmp_path: Path) -> None:
    experiment = load_experiment(BREAST)
    coordinator = Coordinator(InProcessTransport(), experiment, tmp_path, run_key="r")
    coordinator.setup()
    coordinator.align()
    node = coordinator.transport.nodes["platform"]
    from federation.payload import Payload

    request = Payload(meta={"epoch": 0, "batch": 0, "seq": 99, "run_key": "r",
                            "run_dir": str(tmp_path)})
    first = node.handle("train.step", request)
    version = PartySession.load(tmp_path / "platform").state.version
    again = node.handle("train.step", Payload(meta=dict(request.meta)))
    assert np.array_equal(first.arrays["quarter_logits"], again.arrays["quarter_logits"])
    assert PartySession.load(tmp_path / "platform").state.version == version


def test_a_failed_action_leaves_the_saved_state_untouched(tmp_path: Path, monkeypatch) -> None:
    """An exception mid-action (a disk error, say) must not leave half-applied memory behind."""
    experiment = load_experiment(BREAST)
    coordinator = Coordinator(InProcessTransport(), experiment, tmp_path, run_key="r")
    coordinator.setup()
    before = (tmp_path / "bank" / "state.npz").read_bytes()

    def broken_save(self, reply=None):
        raise OSError("disk full")

    monkeypatch.setattr(PartySession, "save", broken_save)
    with pytest.raises(PartyFailed, match="disk full"):
        coordinator.align()
    assert (tmp_path / "bank" / "state.npz").read_bytes() == before
