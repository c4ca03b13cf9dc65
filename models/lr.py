"""Party-local logistic-regression parts, mini-batch schedule and central reference.

In hetero LR (DESIGN §4.1) the model ``z = X_b·w_b + b + X_p·w_p`` is split by
columns: the bank owns ``w_b`` and the intercept ``b``, the platform owns
``w_p``. Each side keeps its slice in an :class:`LRPart` and updates it with
its own torch optimizer from the gradient the protocol lets it learn:

    grad_w = X_partyᵀ d / m + l2·w        grad_b = Σ d / m   (no L2 on b)

with ``d`` the Taylor residual of :mod:`models.taylor` and ``m`` the batch size.

Why a vertical run can be checked against a central one bit for bit (up to
floating-point summation order): SGD, Adam and RMSprop update every
coordinate from that coordinate's own gradient history only. Two parts that
receive the slices of one gradient therefore follow exactly the trajectory of
one part holding all the coordinates. :func:`fit_central_taylor` is that one
part, trained with the same residual, the same :func:`batch_schedule` and the
same :meth:`LRPart.step` — so the only difference left in a federated run is
what the cryptography adds (fixed-point encoding), and a test can measure it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from models.taylor import taylor_residual

__all__ = [
    "LRPart",
    "OptimizerConfig",
    "batch_schedule",
    "check_batch_size",
    "fit_central_taylor",
    "mean_gradient",
]

#: Minimum rows per batch, per feature of the wider party (FATE issue 3691):
#: with fewer rows than features a party could solve the other side's
#: residuals from the gradients it receives.
ROWS_PER_FEATURE = 4

_OPT_KEY = re.compile(r"^opt\.state\.(\d+)\.([A-Za-z_][A-Za-z0-9_]*)$")


class OptimizerConfig(BaseModel):
    """Which torch optimizer a part uses, and its hyper-parameters.

    Parameters
    ----------
    name : {"sgd", "adam", "rmsprop"}, default "adam"
        The torch.optim class. All three are per-coordinate, which is what
        makes a vertical run equal to the central reference.
    learning_rate : float, default 0.05
        Step size, > 0.
    l2 : float, default 0.001
        L2 penalty coefficient on the weights (never on the intercept), ≥ 0.
        Added to the gradient by :meth:`LRPart.step`, not through torch's
        ``weight_decay``, so the gradient a party logs is the one it applied.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Literal["sgd", "adam", "rmsprop"] = "adam"
    learning_rate: float = Field(default=0.05, gt=0)
    l2: float = Field(default=0.001, ge=0)


def _make_optimizer(
    params: list[torch.nn.Parameter], config: OptimizerConfig
) -> torch.optim.Optimizer:
    """Build the torch optimizer named by ``config`` over ``params``."""
    if config.name == "sgd":
        return torch.optim.SGD(params, lr=config.learning_rate)
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate)
    return torch.optim.RMSprop(params, lr=config.learning_rate)


def _as_matrix(X: np.ndarray, n_features: int) -> np.ndarray:
    """Return ``X`` as a float64 2-d array with ``n_features`` columns."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise ValueError(
            f"expected a 2-d feature matrix with {n_features} columns, got shape {arr.shape}; "
            "pass the columns in the part's feature_names order"
        )
    return arr


class LRPart:
    """One party's slice of a logistic-regression model.

    Parameters
    ----------
    feature_names : list of str
        Names of the columns this party holds, in the order of its matrix.
    fit_intercept : bool
        True for the party that owns the intercept (the bank), False otherwise.
    optimizer : OptimizerConfig
        The optimizer this party runs locally.

    Notes
    -----
    Weights start at zero (so both parties start from the same known point and
    a run is reproducible) and are float64 torch parameters: parameter 0 is the
    weight vector, parameter 1 the intercept when there is one. That index is
    what the ``opt.state.<i>.<name>`` keys of :meth:`state_dict` refer to.
    """

    def __init__(
        self, feature_names: list[str], *, fit_intercept: bool, optimizer: OptimizerConfig
    ) -> None:
        names = [str(name) for name in feature_names]
        if len(set(names)) != len(names):
            duplicated = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"feature names must be unique; repeated: {', '.join(duplicated)}")
        self.feature_names: list[str] = names
        self.fit_intercept: bool = bool(fit_intercept)
        self.optimizer_config: OptimizerConfig = optimizer
        self._w = torch.nn.Parameter(torch.zeros(len(names), dtype=torch.float64))
        self._b = (
            torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)) if self.fit_intercept else None
        )
        self._optimizer: torch.optim.Optimizer | None = None
        self._saved_opt_state: dict[str, np.ndarray] = {}
        """Optimizer state loaded but not yet handed to an optimizer (see :attr:`optimizer`)."""

    def _params(self) -> list[torch.nn.Parameter]:
        return [self._w] if self._b is None else [self._w, self._b]

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The torch optimizer, built on first use with any loaded running state.

        Why lazily: building a torch optimizer imports ``torch._dynamo``
        (about 1.5 s), and in Flower's deployment engine every message starts
        a fresh process that rebuilds this part from disk, while most
        messages only read the weights and never step.
        """
        if self._optimizer is None:
            self._optimizer = _make_optimizer(self._params(), self.optimizer_config)
            opt_state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in self._saved_opt_state.items():
                match = _OPT_KEY.match(key)
                assert match is not None  # checked in load_state_dict
                opt_state.setdefault(int(match.group(1)), {})[match.group(2)] = (
                    torch.from_numpy(np.array(value, copy=True)))
            if opt_state:
                groups = self._optimizer.state_dict()["param_groups"]
                self._optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
            self._saved_opt_state = {}
        return self._optimizer

    @property
    def n_features(self) -> int:
        """Number of feature columns this part holds."""
        return len(self.feature_names)

    @property
    def weights(self) -> np.ndarray:
        """A copy of the weight vector, shape (n_features,)."""
        return self._w.detach().numpy().copy()

    @property
    def intercept(self) -> float:
        """The intercept, or 0.0 for a part without one."""
        return 0.0 if self._b is None else float(self._b.detach()[0])

    def partial_logit(self, X: np.ndarray) -> np.ndarray:
        """This party's share of the logit, ``X @ w + b``.

        Parameters
        ----------
        X : array of shape (m, n_features)
            This party's columns for the rows, in ``feature_names`` order.

        Returns
        -------
        numpy.ndarray of shape (m,)
            ``u_b`` for the bank, ``u_p`` for the platform.
        """
        u = _as_matrix(X, self.n_features) @ self._w.detach().numpy()
        return u + self.intercept if self._b is not None else u

    def step(self, grad_w: np.ndarray, grad_b: float | None = None) -> None:
        """Apply one optimizer step from the data gradient of this part.

        Parameters
        ----------
        grad_w : array of shape (n_features,)
            ``X_partyᵀ d / m`` — the mean data gradient, *without* the L2 term,
            which is added here (``+ l2·w``) so every caller regularises alike.
        grad_b : float or None
            ``Σ d / m`` for the part with the intercept; must be None otherwise.
        """
        g = np.asarray(grad_w, dtype=np.float64).reshape(-1)
        if g.shape != (self.n_features,):
            raise ValueError(
                f"grad_w has {g.size} values but the part has {self.n_features} weights"
            )
        if not np.all(np.isfinite(g)):
            raise ValueError("grad_w contains NaN or infinite values; the step was not applied")
        if self._b is None and grad_b is not None:
            raise ValueError("this part has no intercept; call step() with grad_b=None")
        if self._b is not None:
            if grad_b is None:
                raise ValueError("this part fits the intercept; pass grad_b = sum(d) / m")
            if not np.isfinite(grad_b):
                raise ValueError("grad_b is NaN or infinite; the step was not applied")
        l2 = self.optimizer_config.l2
        total = g + l2 * self._w.detach().numpy() if l2 else g.copy()
        self._w.grad = torch.from_numpy(total)
        if self._b is not None:
            self._b.grad = torch.tensor([float(grad_b)], dtype=torch.float64)  # type: ignore[arg-type]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Weights, intercept and optimizer state as plain numpy arrays.

        Why numpy and flat keys: the part is saved with ``np.savez`` and read
        back with ``allow_pickle=False``, so a checkpoint can be hashed and
        loaded without executing anything. The optimizer state is included so
        a resumed run continues bit-identically (Adam's moments and step count
        matter as much as the weights).

        Returns
        -------
        dict
            ``"weights"``, ``"intercept"`` (shape (1,), only with an
            intercept) and ``"opt.state.<param index>.<name>"`` for each
            optimizer state tensor (e.g. ``"opt.state.0.exp_avg"``,
            ``"opt.state.0.step"`` as a 0-d array).
        """
        out: dict[str, np.ndarray] = {"weights": self.weights}
        if self._b is not None:
            out["intercept"] = self._b.detach().numpy().copy()
        if self._optimizer is None:  # never stepped since loading: the loaded state as it was
            out.update({k: np.array(v, copy=True) for k, v in self._saved_opt_state.items()})
            return out
        for index, entries in self._optimizer.state_dict()["state"].items():
            for name, value in entries.items():
                if value is None:
                    continue
                if isinstance(value, torch.Tensor):
                    out[f"opt.state.{index}.{name}"] = value.detach().cpu().numpy().copy()
                else:
                    out[f"opt.state.{index}.{name}"] = np.asarray(value)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore weights and optimizer state written by :meth:`state_dict`.

        The part must have been built with the same feature names, intercept
        setting and optimizer config; the optimizer hyper-parameters come from
        the constructor, only its running state from ``state``.

        Raises
        ------
        ValueError
            On a missing or unexpected key or a shape mismatch, naming it.
        """
        keys = set(state)
        if "weights" not in keys:
            raise ValueError("state has no 'weights' array; pass a dict from LRPart.state_dict()")
        weights = np.asarray(state["weights"], dtype=np.float64)
        if weights.shape != (self.n_features,):
            raise ValueError(
                f"'weights' has shape {weights.shape} but the part has {self.n_features} features"
            )
        if self._b is not None and "intercept" not in keys:
            raise ValueError("state has no 'intercept' but this part fits one")
        if self._b is None and "intercept" in keys:
            raise ValueError(
                "state has an 'intercept' but this part has none (fit_intercept=False)"
            )
        opt_state: dict[str, np.ndarray] = {}
        n_params = len(self._params())
        for key in sorted(keys - {"weights", "intercept"}):
            match = _OPT_KEY.match(key)
            if match is None:
                raise ValueError(f"unexpected key {key!r} in the part state")
            index = int(match.group(1))
            if index >= n_params:
                raise ValueError(f"{key!r} refers to parameter {index}; the part has {n_params}")
            opt_state[key] = np.array(state[key], copy=True)
        with torch.no_grad():
            self._w.copy_(torch.from_numpy(weights.copy()))
            if self._b is not None:
                intercept = np.asarray(state["intercept"], dtype=np.float64).reshape(-1)
                if intercept.shape != (1,):
                    raise ValueError(f"'intercept' must hold one value, got {intercept.size}")
                self._b.copy_(torch.from_numpy(intercept.copy()))
        self._optimizer = None  # rebuilt with this state on the next step
        self._saved_opt_state = opt_state

    def __repr__(self) -> str:
        return (
            f"LRPart(n_features={self.n_features}, fit_intercept={self.fit_intercept}, "
            f"optimizer={self.optimizer_config.name!r})"
        )


def mean_gradient(X: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Mean data gradient ``Xᵀ d / m`` of a part's weights, in the clear.

    Used by the central reference and by any plaintext simulation of the
    vertical protocol, so both divide and sum the same way.
    """
    arr = np.asarray(X, dtype=np.float64)
    residual = np.asarray(d, dtype=np.float64).reshape(-1)
    if arr.ndim != 2 or arr.shape[0] != residual.size:
        raise ValueError(
            f"X has shape {arr.shape} but there are {residual.size} residuals; "
            "pass the rows of the same batch"
        )
    return arr.T @ residual / residual.size


def _batch_sizes(n_rows: int, batch_size: int) -> list[int]:
    """Sizes of the batches :func:`batch_schedule` makes (they do not depend on the seed)."""
    if n_rows <= 0:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if batch_size <= 0 or batch_size >= n_rows:
        return [n_rows]
    full, rest = divmod(n_rows, batch_size)
    sizes = [batch_size] * full
    if rest:
        if rest < batch_size / 2:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return sizes


def batch_schedule(n_rows: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Deterministic mini-batches of row positions for one epoch.

    Both parties (and the central reference) call this with the same
    arguments, so they agree on the batches without exchanging row lists.

    Parameters
    ----------
    n_rows : int
        Number of aligned training rows.
    batch_size : int
        Rows per batch; ``<= 0`` or ``>= n_rows`` means one full batch in
        natural order (no shuffling: full-batch training does not need it).
    seed : int
        The experiment seed (≥ 0).
    epoch : int
        0-based epoch number; each epoch gets its own shuffle.

    Returns
    -------
    list of numpy.ndarray (int64)
        Row positions per batch; together a permutation of ``range(n_rows)``.
        A last batch smaller than ``batch_size / 2`` is merged into the one
        before, so no batch is tiny (a tiny batch gives noisy steps and would
        trip the rank-leakage guard).
    """
    sizes = _batch_sizes(n_rows, batch_size)
    if len(sizes) == 1 and (batch_size <= 0 or batch_size >= n_rows):
        return [np.arange(n_rows, dtype=np.int64)]
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be ≥ 0, got seed={seed}, epoch={epoch}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)]))
    order = rng.permutation(n_rows).astype(np.int64)
    bounds = np.cumsum(sizes)[:-1]
    return list(np.split(order, bounds))


def check_batch_size(
    batch_size: int, n_rows: int, n_features_bank: int, n_features_platform: int
) -> None:
    """Refuse batch sizes that would let a party solve the other side's values.

    A party receives ``X_partyᵀ d`` per batch; with fewer rows than its
    features it could recover the other side's residuals. FATE issue 3691;
    DESIGN §4.1 requires every batch to have at least
    ``4 × max(#bank features, #platform features)`` rows.

    Raises
    ------
    ValueError
        If any batch of :func:`batch_schedule` is smaller than that minimum,
        saying the minimum and what to change.
    """
    minimum = ROWS_PER_FEATURE * max(int(n_features_bank), int(n_features_platform))
    smallest = min(_batch_sizes(n_rows, batch_size))
    if smallest >= minimum:
        return
    widest = max(n_features_bank, n_features_platform)
    if n_rows < minimum:
        raise ValueError(
            f"only {n_rows} training rows, but every batch needs at least {minimum} rows "
            f"({ROWS_PER_FEATURE} × {widest} features of the wider party) to stop one party "
            "from solving the other's per-row values; align more rows or use fewer features"
        )
    raise ValueError(
        f"batch_size = {batch_size} gives batches of {smallest} rows, but every batch needs at "
        f"least {minimum} rows ({ROWS_PER_FEATURE} × {widest} features of the wider party) to "
        f"stop one party from solving the other's per-row values; set batch_size ≥ {minimum} "
        "or 0 for full-batch training"
    )


def fit_central_taylor(
    X: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    *,
    optimizer: OptimizerConfig,
    batch_size: int,
    seed: int,
    epochs: int,
    fit_intercept: bool = True,
) -> LRPart:
    """Train one central part on the joined columns with the Taylor residual.

    This is the reference a vertical run must match: same residual
    (:func:`models.taylor.taylor_residual`), same batches
    (:func:`batch_schedule` with epochs ``0 .. epochs-1``), same update
    (:meth:`LRPart.step`). Put the bank's columns first, then the platform's,
    and the first ``n_bank`` weights equal the bank part's.

    Parameters
    ----------
    X : array of shape (n, n_features)
        Joined training features.
    y : array of shape (n,)
        Labels in {0, 1}.
    feature_names : sequence of str
        Column names of ``X``.
    optimizer : OptimizerConfig
        Optimizer and hyper-parameters (the same the parties use).
    batch_size, seed : int
        As for :func:`batch_schedule`.
    epochs : int
        Number of epochs to run (a vertical run's early-stopped epoch count).
    fit_intercept : bool, default True
        Whether the model has an intercept.

    Returns
    -------
    LRPart
        The trained part (its optimizer state included).
    """
    names = list(feature_names)
    X_arr = _as_matrix(X, len(names))
    y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
    if y_arr.size != X_arr.shape[0]:
        raise ValueError(f"X has {X_arr.shape[0]} rows but y has {y_arr.size} labels")
    if not np.all(np.isin(y_arr, (0.0, 1.0))):
        raise ValueError("labels must be 0 or 1")
    if epochs < 0:
        raise ValueError(f"epochs must be ≥ 0, got {epochs}")
    part = LRPart(names, fit_intercept=fit_intercept, optimizer=optimizer)
    for epoch in range(epochs):
        for rows in batch_schedule(X_arr.shape[0], batch_size, seed, epoch):
            X_batch = X_arr[rows]
            d = taylor_residual(part.partial_logit(X_batch), y_arr[rows])
            grad_b = float(np.sum(d) / d.size) if fit_intercept else None
            part.step(mean_gradient(X_batch, d), grad_b)
    return part
