"""Experiment specifications: one TOML file describes one joint-modeling job.

``creditlab run EXPERIMENT.toml`` reads the file with :func:`load_experiment`
into an :class:`Experiment` — frozen pydantic models, one per TOML section —
and everything downstream (alignment, split, training, recording) takes its
settings from there. Nothing about a particular dataset lives in code: file
paths, id and label columns and the feature lists are all in the TOML.

Sections (see ``examples/default_credit.toml``)::

    [experiment]  name, seed, description
    [bank]        data, id_column, id_kind, label_column, features
    [platform]    data or snapshot (+ store), id_column, id_kind, features
    [split]       test_fraction, validation_fraction, stratify
    [train]       protocol, optimizer, learning_rate, l2, batch_size,
                  max_epochs, patience, min_delta
    [crypto]      key_bits, test_only_keys

Why so strict: a typo in a key (``learning_rte``) silently falling back to a
default would train a different model than the analyst believes. Unknown
keys, wrong types and out-of-range values are :class:`lab.errors.ExperimentError`
naming the file, the key, the value and the fix.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from lab.errors import ExperimentError
from models.lr import OptimizerConfig

__all__ = [
    "BankSection",
    "CryptoSection",
    "Experiment",
    "ExperimentSection",
    "PlatformSection",
    "SplitSection",
    "TrainSection",
    "load_experiment",
]

#: Smallest Paillier modulus allowed outside tests (DESIGN §5).
MIN_PRODUCTION_KEY_BITS = 2048
#: Smallest modulus allowed at all, even for tests.
MIN_TEST_KEY_BITS = 512

IdKind = Literal["uscc", "resident_id", "uscc_or_resident_id", "opaque"]


def _fail(problem: str, remedy: str) -> PydanticCustomError:
    """A validation error carrying our own problem/remedy text to the TOML error."""
    return PydanticCustomError("creditlab", "{problem}", {"problem": problem, "remedy": remedy})


class _Section(BaseModel):
    """Common config: unknown keys are errors, values are not coerced, models are frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ExperimentSection(_Section):
    """``[experiment]``: identity of the run."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=100,
        description=(
            'a folder-safe name of letters, digits, "_", "-" or "." (used for runs/<name>/)'
        ),
    )
    seed: int = Field(default=42, ge=0, description="an integer ≥ 0, e.g. 42")
    description: str = Field(default="", description="free text")


class _PartySection(_Section):
    """Columns shared by ``[bank]`` and ``[platform]``."""

    data: Annotated[Path, Field(strict=False)] = Field(
        description="the path of the party's CSV file, relative to the TOML file's folder"
    )
    id_column: str = Field(min_length=1, description="the name of the id column in the CSV")
    id_kind: IdKind = Field(
        default="opaque",
        description='one of "uscc", "resident_id", "uscc_or_resident_id", "opaque"',
    )
    features: list[str] = Field(
        min_length=1, description='a non-empty list of feature column names, e.g. ["x0", "x1"]'
    )

    @field_validator("features")
    @classmethod
    def _features_are_distinct(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if any(not name for name in value):
            raise _fail("a feature name is empty", "remove the empty string from features")
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise _fail(
                f"features are listed twice: {', '.join(repeated)}",
                "list each feature column once",
            )
        id_column = info.data.get("id_column")
        if id_column in value:
            raise _fail(
                f"the id column {id_column!r} is listed as a feature",
                f"remove {id_column!r} from features; ids identify rows, they do not score them",
            )
        return value


class BankSection(_PartySection):
    """``[bank]``: the bank's loan book — labels, its own features."""

    label_column: str = Field(
        min_length=1, description="the name of the 0/1 outcome column (1 = default)"
    )

    @field_validator("label_column")
    @classmethod
    def _label_is_not_a_feature(cls, value: str, info: ValidationInfo) -> str:
        if value in (info.data.get("features") or []):
            raise _fail(
                f"the label column {value!r} is also listed in features",
                f"remove {value!r} from features; a model must not see the outcome",
            )
        if value == info.data.get("id_column"):
            raise _fail(
                f"the label column {value!r} is the id column too",
                "point label_column at the 0/1 outcome column",
            )
        return value


class PlatformSection(_PartySection):
    """``[platform]``: the platform's enterprise features (no labels).

    The features come from a CSV file (``data``) or from a stored feature
    snapshot (``snapshot = N``, see :mod:`lab.features`): a numbered, dated,
    content-hashed version of the derived features, so a model names exactly
    the platform data it was trained on. :func:`load_experiment` exports the
    snapshot once to ``snapshots/platform-snapshot-N.csv`` beside the TOML file
    (with its ``.snapshot.json`` sidecar), checks the export's content hash
    against the store on every load, and sets ``data`` to it; the run's
    parameters then carry ``platform.snapshot``.
    """

    data: Annotated[Path, Field(strict=False)] | None = Field(  # type: ignore[assignment]
        default=None,
        description=("the path of the party's CSV file, relative to the TOML file's folder "
                     "(or give snapshot instead)"),
    )
    snapshot: int | None = Field(
        default=None, ge=1,
        description="the number of a stored feature snapshot (`creditlab features list`)",
    )
    store: str | None = Field(
        default=None,
        description=("the platform store's URL for snapshot (default: $CREDITLAB_DB_URL, "
                     "else the embedded SQLite store)"),
    )


class SplitSection(_Section):
    """``[split]``: how the bank assigns aligned ids to train/validation/test."""

    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, allow_inf_nan=False, description="a number in (0, 1), e.g. 0.2"
    )
    validation_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="a number in (0, 1), the share of the non-test rows, e.g. 0.2",
    )
    stratify: bool = Field(default=True, description="true or false")


class TrainSection(_Section):
    """``[train]``: protocol, optimizer and early stopping."""

    protocol: Literal["hetero_lr"] = Field(default="hetero_lr", description='"hetero_lr"')
    optimizer: Literal["sgd", "adam", "rmsprop"] = Field(
        default="adam", description='one of "sgd", "adam", "rmsprop"'
    )
    learning_rate: float = Field(
        default=0.05, gt=0, allow_inf_nan=False, description="a number > 0, e.g. 0.05"
    )
    l2: float = Field(
        default=0.001, ge=0, allow_inf_nan=False, description="a number ≥ 0, e.g. 0.001"
    )
    batch_size: int = Field(
        default=0, ge=0, description="an integer ≥ 0 (0 = full batch), e.g. 4096"
    )
    max_epochs: int = Field(default=15, ge=1, description="an integer ≥ 1, e.g. 15")
    patience: int = Field(
        default=3,
        ge=1,
        description="an integer ≥ 1: epochs without validation-loss improvement before stopping",
    )
    min_delta: float = Field(
        default=1e-4,
        ge=0,
        allow_inf_nan=False,
        description="a number ≥ 0: the smallest validation-loss drop that counts, e.g. 0.0001",
    )

    def optimizer_config(self) -> OptimizerConfig:
        """The optimizer every party builds its :class:`models.lr.LRPart` with."""
        return OptimizerConfig(name=self.optimizer, learning_rate=self.learning_rate, l2=self.l2)


class CryptoSection(_Section):
    """``[crypto]``: Paillier key size."""

    # Declared before key_bits so key_bits' validator can see it.
    test_only_keys: bool = Field(
        default=False, description="true only in tests, to allow key_bits < 2048"
    )
    key_bits: int = Field(
        default=MIN_PRODUCTION_KEY_BITS,
        description="an integer ≥ 2048 and a multiple of 128, e.g. 2048",
    )

    @field_validator("key_bits")
    @classmethod
    def _key_is_strong_enough(cls, value: int, info: ValidationInfo) -> int:
        if value % 128:
            raise _fail(f"key_bits = {value} is not a multiple of 128", "use 2048, 3072 or 4096")
        if value < MIN_TEST_KEY_BITS:
            raise _fail(
                f"key_bits = {value} is below {MIN_TEST_KEY_BITS}, too small even for tests",
                "use 2048 (or 1024 with test_only_keys = true in tests)",
            )
        if value < MIN_PRODUCTION_KEY_BITS and not info.data.get("test_only_keys", False):
            raise _fail(
                f"key_bits = {value} is below {MIN_PRODUCTION_KEY_BITS}, which protects real "
                "data for too short a time",
                f"set key_bits = {MIN_PRODUCTION_KEY_BITS}, or add test_only_keys = true to "
                "[crypto] if this experiment is only a test",
            )
        return value


class FederationSection(_Section):
    """``[federation]``: how long the coordinator waits for a party."""

    party_timeout_seconds: float = Field(
        default=600.0, gt=0, allow_inf_nan=False,
        description="seconds a party may stay silent before the run stops, e.g. 600")
    retry_seconds: float = Field(
        default=30.0, gt=0, allow_inf_nan=False,
        description="seconds before an unanswered message is sent again, e.g. 30")


class Experiment(_Section):
    """A whole experiment file. Build it with :func:`load_experiment`."""

    experiment: ExperimentSection = Field(description="a [experiment] section")
    bank: BankSection = Field(description="a [bank] section")
    platform: PlatformSection = Field(description="a [platform] section")
    split: SplitSection = Field(default_factory=SplitSection, description="a [split] section")
    train: TrainSection = Field(default_factory=TrainSection, description="a [train] section")
    crypto: CryptoSection = Field(default_factory=CryptoSection, description="a [crypto] section")
    federation: FederationSection = Field(
        default_factory=FederationSection, description="a [federation] section")

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The TOML file this experiment was loaded from (None if built in code)."""
        return self._source

    @property
    def name(self) -> str:
        """Shortcut for ``experiment.name``, the run folder name."""
        return self.experiment.name


# --------------------------------------------------------------------------- loading


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The section model found by walking ``loc`` from :class:`Experiment` (None if not one)."""
    model: type[BaseModel] | None = Experiment
    for part in loc:
        if model is None or isinstance(part, int):
            return None
        info = model.model_fields.get(part)
        annotation = None if info is None else info.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        model = annotation if is_model else None
    return model


def _field_at(loc: tuple[str | int, ...]) -> tuple[type[BaseModel] | None, Any]:
    """The model owning the last named key of ``loc`` and that key's FieldInfo."""
    names = list(loc)
    while names and isinstance(names[-1], int):
        names.pop()
    if not names:
        return None, None
    owner = _model_at(tuple(names[:-1]))
    return owner, None if owner is None else owner.model_fields.get(str(names[-1]))


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _section_label(loc: tuple[str | int, ...]) -> str:
    return f"[{_dotted(loc)}]" if loc else "the file's top level"


def _to_experiment_error(file: Path, exc: ValidationError) -> ExperimentError:
    """Turn pydantic's first error into one actionable :class:`ExperimentError`."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    key = _dotted(loc) or None
    owner, info = _field_at(loc)
    description = getattr(info, "description", None)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent_model = _model_at(loc[:-1])
        allowed = ", ".join(parent_model.model_fields) if parent_model is not None else ""
        problem = f"unknown key {loc[-1]!r} in {_section_label(loc[:-1])}"
        remedy = f"remove or rename it; allowed keys there: {allowed}"
    elif kind == "missing":
        problem = "this required key is missing"
        if owner is Experiment:
            remedy = f"add {description}" if description else f"add a [{loc[-1]}] section"
        else:
            what = f" ({description})" if description else ""
            remedy = f"add {loc[-1]} to {_section_label(loc[:-1])}{what}"
    elif kind == "creditlab":
        ctx = first.get("ctx") or {}
        problem = f"value {first.get('input')!r} is not allowed: {ctx.get('problem', first['msg'])}"
        remedy = str(ctx.get("remedy", "fix the value"))
    elif loc and isinstance(loc[-1], int):
        problem = f"entry {first.get('input')!r} is not allowed ({first['msg']})"
        remedy = f"make {_dotted(loc[:-1])} {description}" if description else "fix the entry"
    else:
        problem = f"value {first.get('input')!r} is not allowed ({first['msg']})"
        remedy = f"set {key} to {description}" if description else "fix the value"
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem(s) after this one)"
    return ExperimentError(file, key=key, problem=problem, remedy=remedy)


def _resolve_data_paths(raw: dict[str, Any], folder: Path) -> None:
    """Make ``[bank].data`` / ``[platform].data`` absolute, relative to the TOML's folder."""
    for section in ("bank", "platform"):
        table = raw.get(section)
        if isinstance(table, dict) and isinstance(table.get("data"), str):
            path = Path(table["data"]).expanduser()
            table["data"] = str(path if path.is_absolute() else (folder / path).resolve())


def _with_platform_source(experiment: Experiment, file: Path, folder: Path) -> Experiment:
    """Check that ``[platform]`` names exactly one source; export a named snapshot."""
    platform = experiment.platform
    if (platform.data is None) == (platform.snapshot is None):
        raise ExperimentError(
            file, key="platform.data",
            problem=("[platform] names both data and snapshot" if platform.data is not None
                     else "[platform] names neither data nor snapshot"),
            remedy="give exactly one: data = \"file.csv\" or snapshot = N (a stored snapshot)")
    if platform.store is not None and platform.snapshot is None:
        raise ExperimentError(file, key="platform.store",
                              problem="store is set but no snapshot is named",
                              remedy="remove store, or add snapshot = N")
    if platform.snapshot is None:
        return experiment
    from lab.snapshot_source import SnapshotSourceError, export_for_experiment

    try:
        csv = export_for_experiment(platform.snapshot, folder / "snapshots", platform.store)
    except SnapshotSourceError as exc:
        raise ExperimentError(file, key="platform.snapshot", problem=exc.problem,
                              remedy=exc.remedy) from None
    return experiment.model_copy(update={"platform": platform.model_copy(update={"data": csv})})


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment TOML file.

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file. Data paths inside it are resolved relative to the
        folder that holds it, so an experiment works from any working
        directory.

    Returns
    -------
    Experiment
        Frozen, validated settings with absolute data paths; ``.source`` is
        the TOML file.

    Raises
    ------
    ExperimentError
        If the file is missing or not TOML, a key is unknown or missing, a
        value is of the wrong type or out of range, a data file does not
        exist, or key_bits < 2048 without ``test_only_keys = true``.
    """
    file = Path(path)
    if not file.is_file():
        raise ExperimentError(
            file,
            problem="the experiment file does not exist",
            remedy="check the path; example experiments are in examples/*.toml",
        )
    try:
        with file.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(
            file, problem=f"not valid TOML ({exc})", remedy="fix the syntax at the line shown"
        ) from exc
    except OSError as exc:
        raise ExperimentError(
            file,
            problem=f"the file cannot be read ({exc.strerror})",
            remedy="check its permissions",
        ) from exc
    folder = file.resolve().parent
    _resolve_data_paths(raw, folder)
    try:
        experiment = Experiment.model_validate(raw)
    except ValidationError as exc:
        raise _to_experiment_error(file, exc) from None
    experiment = _with_platform_source(experiment, file, folder)
    for section in ("bank", "platform"):
        data: Path = getattr(experiment, section).data
        if not data.is_file():
            raise ExperimentError(
                file,
                key=f"{section}.data",
                problem=f"the data file {str(data)!r} does not exist",
                remedy=(
                    f"fix the path; a relative path is read from the TOML file's folder {folder}"
                ),
            )
    experiment._source = file.resolve()
    return experiment
