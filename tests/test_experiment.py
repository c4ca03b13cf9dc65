"""Experiment TOML loading: examples load; every refusal names file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lab.errors import ExperimentError
from lab.experiment import Experiment, load_experiment
from models.lr import OptimizerConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def test_default_credit_example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # paths resolve from the TOML's folder, not the cwd
    experiment = load_experiment(EXAMPLES / "default_credit.toml")
    assert experiment.name == "default_credit" and experiment.experiment.seed == 42
    assert experiment.source == (EXAMPLES / "default_credit.toml").resolve()
    assert experiment.bank.data == ROOT / "data/default_credit/bank.csv"
    assert experiment.platform.data == ROOT / "data/default_credit/platform.csv"
    assert experiment.bank.data.is_absolute()
    assert experiment.bank.label_column == "y" and experiment.bank.id_kind == "opaque"
    assert experiment.bank.features == [f"x{i}" for i in range(13)]
    assert experiment.platform.features == [f"x{i}" for i in range(10)]
    assert experiment.split.test_fraction == 0.2 and experiment.split.stratify is True
    train = experiment.train
    assert (train.protocol, train.batch_size, train.max_epochs, train.patience) == (
        "hetero_lr",
        2048,
        20,
        3,
    )
    assert train.optimizer_config() == OptimizerConfig(name="adam", learning_rate=0.05, l2=0.001)
    assert (experiment.crypto.key_bits, experiment.crypto.test_only_keys) == (2048, False)


def test_breast_example_uses_test_only_keys() -> None:
    experiment = load_experiment(EXAMPLES / "breast.toml")
    assert experiment.bank.data == ROOT / "data/breast/bank.csv"
    assert len(experiment.platform.features) == 20
    assert (experiment.train.batch_size, experiment.train.max_epochs) == (0, 10)
    assert (experiment.crypto.key_bits, experiment.crypto.test_only_keys) == (1024, True)


def test_experiment_is_frozen() -> None:
    experiment = load_experiment(EXAMPLES / "breast.toml")
    with pytest.raises(ValidationError):
        experiment.train.learning_rate = 1.0  # type: ignore[misc]


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (EXAMPLES / "breast.toml").read_text(encoding="utf-8")
    text = text.replace("../data/", f"{ROOT / 'data'}/")
    assert old in text, old
    path = tmp_path / "experiment.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _error(path: Path) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    return info.value


def test_unknown_key_names_key_and_allowed_ones(tmp_path: Path) -> None:
    path = _variant(tmp_path, "l2 = 0.001", "l2 = 0.001\nlearning_rte = 0.1")
    error = _error(path)
    assert error.key == "train.learning_rte"
    assert str(error).startswith(f"{path}, key 'train.learning_rte': unknown key")
    assert "allowed keys there: protocol, optimizer, learning_rate, l2, batch_size" in error.remedy


def test_unknown_section(tmp_path: Path) -> None:
    error = _error(_variant(tmp_path, "[split]", "[splits]"))
    assert error.key == "splits"
    assert "experiment, bank, platform, split, train, crypto" in error.remedy


def test_short_key_without_test_only_keys(tmp_path: Path) -> None:
    path = _variant(tmp_path, "test_only_keys = true", "test_only_keys = false")
    error = _error(path)
    assert error.key == "crypto.key_bits"
    assert "1024" in error.problem and "below 2048" in error.problem
    assert "key_bits = 2048" in error.remedy and "test_only_keys = true" in error.remedy
    # leaving the flag out is the same as false
    assert _error(_variant(tmp_path, "test_only_keys = true", "")).key == "crypto.key_bits"


def test_missing_experiment_file(tmp_path: Path) -> None:
    error = _error(tmp_path / "absent.toml")
    assert "absent.toml" in str(error) and "does not exist" in str(error)
    assert "examples/" in error.remedy


def test_missing_data_file(tmp_path: Path) -> None:
    error = _error(_variant(tmp_path, f"{ROOT / 'data'}/breast/bank.csv", "nowhere/bank.csv"))
    assert error.key == "bank.data"
    assert str(tmp_path / "nowhere" / "bank.csv") in error.problem
    assert "relative path is read from the TOML file's folder" in error.remedy


def test_bad_value_names_value_and_remedy(tmp_path: Path) -> None:
    error = _error(_variant(tmp_path, "learning_rate = 0.05", "learning_rate = -1"))
    assert error.key == "train.learning_rate"
    assert "value -1 is not allowed" in error.problem
    assert error.remedy == "set train.learning_rate to a number > 0, e.g. 0.05"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("stratify = true", 'stratify = "yes"', "split.stratify"),  # no silent coercion
        ("batch_size = 0", "batch_size = 10.5", "train.batch_size"),
        ('optimizer = "adam"', 'optimizer = "lbfgs"', "train.optimizer"),
        ('id_kind = "opaque"', 'id_kind = "passport"', "bank.id_kind"),
        ('name = "breast"', 'name = "../etc"', "experiment.name"),
        ('label_column = "y"\n', "", "bank.label_column"),
        ('"x8", "x9"]', '"x8", "y"]', "bank.label_column"),
        ('"x8", "x9"]', '"x8", "x8"]', "bank.features"),
    ],
)
def test_other_bad_values(tmp_path: Path, old: str, new: str, key: str) -> None:
    error = _error(_variant(tmp_path, old, new))
    assert error.key == key
    assert str(error).startswith(f"{tmp_path / 'experiment.toml'}, key '{key}': ")
    assert ". Remedy: " in str(error)


def test_invalid_toml(tmp_path: Path) -> None:
    error = _error(_variant(tmp_path, "seed = 42", "seed = = 42"))
    assert "not valid TOML" in error.problem and "line" in error.problem


def test_experiment_can_be_built_in_code() -> None:
    experiment = Experiment.model_validate(
        {
            "experiment": {"name": "t"},
            "bank": {"data": "b.csv", "id_column": "id", "label_column": "y", "features": ["a"]},
            "platform": {"data": "p.csv", "id_column": "id", "features": ["a"]},
        }
    )
    assert experiment.source is None
    assert experiment.train.batch_size == 0 and experiment.crypto.key_bits == 2048


def test_experiment_survives_a_json_round_trip() -> None:
    """The driver ships the experiment to the nodes as JSON and re-validates it there."""
    experiment = load_experiment(EXAMPLES / "default_credit.toml")
    shipped = Experiment.model_validate_json(experiment.model_dump_json())
    assert shipped.model_dump() == experiment.model_dump()
    assert shipped.bank.data == ROOT / "data/default_credit/bank.csv"
