"""Second-order Taylor approximation of the logistic loss (DESIGN §4.1).

For a label ``y`` in {0, 1} and a logit ``z`` the exact logistic loss is

    ℓ(z) = log(1 + e^z) − y·z.

Expanding ``log(1 + e^z)`` around ``z = 0`` to second order gives

    ℓ(z) ≈ log 2 + z/2 + z²/8 − y·z,

whose derivative with respect to ``z`` is the *residual*

    d = ∂ℓ/∂z ≈ ¼·z + ½ − y.

Why the approximation: the exact residual ``sigmoid(z) − y`` is not linear in
``z``, so it cannot be evaluated on Paillier ciphertexts, which only support
adding ciphertexts and multiplying them by plaintext scalars. The Taylor
residual is affine in ``z = u_b + u_p``: the bank can send ``[[¼u_b + ½ − y]]``
under its key, the platform can add ``[[¼u_p]]`` without decrypting anything,
and each side can then form ``X_partyᵀ d`` homomorphically. The gradient of a
party's weights is ``X_partyᵀ d / m`` (plus the L2 term), which is exactly what
:func:`models.lr.fit_central_taylor` computes in the clear — so a federated run
and the central reference optimise the same objective.

The approximation is good near ``z = 0`` (small, regularised logits, which is
where a credit score typically lives on standardised features) and worsens
for confident predictions; the central sklearn reference
(:mod:`models.reference`) measures what the approximation costs in AUC.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["taylor_loss", "taylor_residual"]

_LOG2 = math.log(2.0)


def _as_pair(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``z`` and ``y`` as float64 1-d arrays of equal length.

    Raises
    ------
    ValueError
        If the shapes differ, so a misaligned batch fails loudly instead of
        broadcasting into a wrong residual.
    """
    z_arr = np.asarray(z, dtype=np.float64).reshape(-1)
    y_arr = np.asarray(y, dtype=np.float64).reshape(-1)
    if z_arr.shape != y_arr.shape:
        raise ValueError(
            f"logits and labels differ in length ({z_arr.size} vs {y_arr.size}); "
            "pass the logits and the labels of the same rows"
        )
    return z_arr, y_arr


def taylor_residual(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Residual ``d = ¼·z + ½ − y`` of the Taylor loss, one value per row.

    Parameters
    ----------
    z : array of shape (m,)
        Full logits ``u_b + u_p`` of the batch rows.
    y : array of shape (m,)
        Labels in {0, 1} of the same rows.

    Returns
    -------
    numpy.ndarray of shape (m,), float64
        The per-row derivative of the approximated loss with respect to ``z``.
    """
    z_arr, y_arr = _as_pair(z, y)
    return 0.25 * z_arr + 0.5 - y_arr


def taylor_loss(z: np.ndarray, y: np.ndarray) -> float:
    """Mean approximated loss ``log 2 + z/2 + z²/8 − y·z`` over the rows.

    Parameters
    ----------
    z : array of shape (m,)
        Full logits of the rows.
    y : array of shape (m,)
        Labels in {0, 1}.

    Returns
    -------
    float
        The mean over rows (without the L2 penalty), used for early stopping
        on the validation rows exactly as a federated run would compute it.
    """
    z_arr, y_arr = _as_pair(z, y)
    if z_arr.size == 0:
        raise ValueError("cannot compute a mean loss over zero rows")
    return float(np.mean(_LOG2 + 0.5 * z_arr + 0.125 * z_arr * z_arr - y_arr * z_arr))
