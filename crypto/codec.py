r"""The one fixed-point codec between real numbers and Paillier plaintexts.

Paillier encrypts integers modulo ``n`` (a 2048-bit number), and its
homomorphic operations are integer addition and multiplication by a plaintext
integer, both modulo ``n``. Real-valued vectors (residuals, partial logits,
features) therefore travel as scaled integers, exactly as in
``phe/encoding.py`` but with one *fixed* scale per vector instead of a
per-number exponent, so that a whole vector adds and multiplies without
rescaling.

Encoding
--------
A value ``v`` at ``f`` fractional bits is the signed integer

.. math::  \operatorname{enc}_f(v) = \operatorname{round}(v \cdot 2^{f})

(round half to even). The *precision* is :math:`2^{-f}`: the encoding error
of one value is at most :math:`2^{-f-1}` (``f = 32`` gives ≈ 1.2e-10). The
*range* is :math:`|v| \le \text{max\_abs}` (default :math:`2^{40}` ≈ 1.1e12);
a value outside it, NaN or ±inf raises :class:`~crypto.errors.CodecError`
naming its index instead of being wrapped silently.

Negative numbers live in the top half of :math:`\mathbb{Z}_n`: the encryption
layer reduces ``enc(v) mod n``, so ``-1`` becomes ``n - 1``. Decoding maps a
residue ``x`` in ``[0, n)`` back to the signed integer

.. math::  s = x \text{ if } x \le \lfloor n/2 \rfloor \text{ else } x - n

and returns :math:`s / 2^{f}`.

Scales under homomorphic operations
-----------------------------------
* Adding two ciphertexts at the same ``f`` gives the sum at ``f``.
* Multiplying a ciphertext at ``f_1`` by a plaintext integer quantised at
  ``f_2`` (:func:`quantise_features`) gives the product at ``f_1 + f_2``:
  :math:`\operatorname{round}(x 2^{f_2}) \cdot \operatorname{round}(d 2^{f_1})
  \approx x d \, 2^{f_1+f_2}`. So :math:`X^\top d` over ``rows`` terms decodes
  with ``frac_bits = f_1 + f_2``; its absolute error is at most about
  :math:`\text{rows}\,(|x|_{max} 2^{-f_1-1} + |d|_{max} 2^{-f_2-1})`.
* Adding a plaintext mask ``r`` is exact: the key owner sees ``s + r`` and
  the mask owner subtracts ``r`` modulo ``n`` before decoding.

Overflow (wrap-around) detection
--------------------------------
Sums are exact as long as every true integer stays below ``n/2`` in
magnitude. A sum that exceeded it decodes to a number near :math:`\pm n/2`,
astronomically larger than ``max_abs``; :meth:`FixedPointCodec.decode` refuses
any decoded magnitude above ``max_abs`` and raises instead of returning it.
With ``f = 32``, ``max_abs = 2^40`` and 16-bit features, a product entry needs
at most ~110 bits, far from the 2047 bits available.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from crypto.errors import CodecError

__all__ = ["FixedPointCodec", "max_plain_bits", "quantise_features"]

_INT64_LIMIT = 2**63 - 1


def _format_index(flat_index: int, shape: tuple[int, ...]) -> str:
    """Human index of a flattened position: ``7`` for 1-D, ``(3, 1)`` otherwise."""
    if len(shape) <= 1:
        return str(flat_index)
    return str(tuple(int(i) for i in np.unravel_index(flat_index, shape)))


def check_numeric_array(values: object, what: str) -> np.ndarray:
    """Return ``values`` as a numpy array of a real numeric dtype.

    Parameters
    ----------
    values : array-like
        Anything ``np.asarray`` accepts.
    what : str
        Name used in the error message (``"values"``, ``"X"``).

    Raises
    ------
    CodecError
        If the dtype is not signed/unsigned integer or floating point
        (booleans, strings, objects and complex numbers are refused so that a
        wrong column never becomes ciphertext by accident).
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"{what} cannot be read as a numeric array: {exc}") from exc
    if arr.dtype.kind not in "iuf":
        raise CodecError(
            f"{what} has dtype {arr.dtype}; the fixed-point codec accepts integer or "
            "floating-point arrays only (convert booleans/strings explicitly first)"
        )
    return arr


def check_finite_in_range(arr: np.ndarray, max_abs: float, what: str) -> None:
    """Raise :class:`CodecError` for the first NaN/inf or ``|value| > max_abs``.

    Parameters
    ----------
    arr : np.ndarray
        Numeric array (any shape); indices in messages refer to this shape.
    max_abs : float
        Largest magnitude accepted.
    what : str
        Name of the array for the message.
    """
    shape = arr.shape
    flat = arr.reshape(-1)
    if flat.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(flat))
        if bad.size:
            i = int(bad[0])
            raise CodecError(
                f"{what} at index {_format_index(i, shape)} is {flat[i]}: the fixed-point "
                "codec cannot encode NaN or infinity; impute or drop it before encrypting"
            )
        over = np.flatnonzero(np.abs(flat.astype(np.float64)) > max_abs)
        if over.size:
            i = int(over[0])
            raise CodecError(
                f"{what} at index {_format_index(i, shape)} is {float(flat[i])!r}, outside "
                f"the codec range ±{max_abs!r}; rescale the input or raise max_abs"
            )
        return
    # Integers: compare exactly as Python ints (no float rounding, no int64 abs overflow).
    lo, hi = int(flat.min(initial=0)), int(flat.max(initial=0))
    if max(-lo, hi) > max_abs:
        for i, v in enumerate(flat.tolist()):
            if abs(v) > max_abs:
                raise CodecError(
                    f"{what} at index {_format_index(i, shape)} is {v}, outside the codec "
                    f"range ±{max_abs!r}; rescale the input or raise max_abs"
                )


def _floor_scaled(max_abs: float, frac_bits: int) -> int:
    """Exact ``floor(max_abs * 2**frac_bits)`` (the largest encoded magnitude)."""
    return math.floor(Fraction(max_abs) * (1 << frac_bits))


@dataclass(frozen=True)
class FixedPointCodec:
    """Fixed-point encoding of real vectors as signed integers (see module docstring).

    Parameters
    ----------
    frac_bits : int, default 32
        Fractional bits ``f``; precision is ``2**-f``. 32 bits keep a Taylor
        residual exact to 1e-10 while leaving >1900 bits of headroom in a
        2048-bit modulus.
    max_abs : float, default 2**40
        Largest magnitude accepted by :meth:`encode` and returned by
        :meth:`decode`. Anything beyond it is treated as a bug or an overflow,
        never wrapped.
    """

    frac_bits: int = 32
    max_abs: float = 2.0**40

    def __post_init__(self) -> None:
        if not isinstance(self.frac_bits, int) or not 0 <= self.frac_bits <= 512:
            raise CodecError(f"frac_bits must be an int in [0, 512], got {self.frac_bits!r}")
        if not (math.isfinite(self.max_abs) and self.max_abs > 0):
            raise CodecError(f"max_abs must be a finite positive number, got {self.max_abs!r}")
        if not math.isfinite(math.ldexp(float(self.max_abs), self.frac_bits)):
            raise CodecError(
                f"max_abs·2^frac_bits overflows a float (max_abs={self.max_abs!r}, "
                f"frac_bits={self.frac_bits}); lower one of them"
            )

    @property
    def precision(self) -> float:
        """Spacing of representable values, ``2**-frac_bits``."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def max_int(self) -> int:
        """Largest magnitude of an encoded integer at this codec's own scale."""
        return _floor_scaled(self.max_abs, self.frac_bits)

    def check_modulus(self, n: int) -> None:
        """Raise :class:`CodecError` if encoded values would not fit below ``n/2``.

        Called by the encryption layer: a codec whose range reaches ``n/2``
        could not tell large positive values from negative ones.
        """
        if 2 * self.max_int >= n // (1 << 64):
            raise CodecError(
                f"codec range ±{self.max_abs!r} at {self.frac_bits} fractional bits needs "
                f"{self.max_int.bit_length() + 1} bits, too close to the {n.bit_length()}-bit "
                "modulus to leave headroom for sums; lower max_abs or frac_bits"
            )

    def encode(self, values: object) -> list[int]:
        """Encode values (any shape, flattened in C order) as signed integers.

        Parameters
        ----------
        values : array-like of float64, float32 or integers
            The real numbers to encode.

        Returns
        -------
        list of int
            ``round(v * 2**frac_bits)`` for each value, as Python ints (they
            may exceed 64 bits).

        Raises
        ------
        CodecError
            On NaN/inf, on ``|v| > max_abs`` (naming the index, value and
            limit), or on a non-numeric dtype.
        """
        arr = check_numeric_array(values, "values")
        check_finite_in_range(arr, self.max_abs, "values")
        flat = arr.reshape(-1)
        f = self.frac_bits
        if flat.dtype.kind in "iu":
            return [int(v) << f for v in flat.tolist()]
        scaled = np.rint(flat.astype(np.float64) * math.ldexp(1.0, f))
        if self.max_int < _INT64_LIMIT:
            return scaled.astype(np.int64).tolist()
        return [int(v) for v in scaled.tolist()]

    def decode(self, ints: Iterable[int], n: int, frac_bits: int | None = None) -> np.ndarray:
        """Decode residues modulo ``n`` at ``frac_bits`` fractional bits to floats.

        Parameters
        ----------
        ints : iterable of int
            Residues in ``[0, n)`` (Paillier plaintexts).
        n : int
            The Paillier modulus the residues live in.
        frac_bits : int, optional
            Scale of the residues; defaults to this codec's ``frac_bits``.
            Products with quantised features carry ``f1 + f2``.

        Returns
        -------
        np.ndarray of float64
            ``s / 2**frac_bits`` with ``s`` the signed representative.

        Raises
        ------
        CodecError
            If a residue is outside ``[0, n)``, or a decoded magnitude exceeds
            ``max_abs`` — the signature of a sum that wrapped around ``n``
            (or of a wrong mask or scale).
        """
        f = self.frac_bits if frac_bits is None else frac_bits
        if not isinstance(f, int) or f < 0:
            raise CodecError(f"frac_bits must be a non-negative int, got {f!r}")
        n = int(n)
        half = n // 2
        limit = _floor_scaled(self.max_abs, f)
        denominator = 1 << f
        values = [int(x) for x in ints]
        out = np.empty(len(values), dtype=np.float64)
        for i, x in enumerate(values):
            if not 0 <= x < n:
                raise CodecError(
                    f"residue at index {i} is not in [0, n) for the {n.bit_length()}-bit "
                    "modulus; it was not produced by decryption under this key"
                )
            s = x - n if x > half else x
            if abs(s) > limit:
                raise CodecError(
                    f"decoded value at index {i} has magnitude ~2^{abs(s).bit_length() - f} "
                    f"(frac_bits={f}), beyond the codec range ±{self.max_abs!r}: the "
                    "homomorphic result overflowed (wrapped around n) or was decoded with the "
                    "wrong mask or frac_bits; use smaller batches or features, or check scales"
                )
            out[i] = s / denominator
        return out


def quantise_features(
    X: np.ndarray, frac_bits: int = 16, *, max_abs: float = 2.0**20
) -> np.ndarray:
    """Round a plaintext feature matrix to integers for ``Xᵀ[[e]]``.

    Parameters
    ----------
    X : np.ndarray
        Plaintext features (any shape; usually rows × features), standardised.
    frac_bits : int, default 16
        Fractional bits; 16 gives precision 1.5e-5 per entry while keeping the
        exponents short (~22 bits for |x| < 50), which is what makes the
        bucketed multi-exponentiation in :func:`crypto.vector.xt_e` cheap.
    max_abs : float, default 2**20
        Largest accepted ``|x|``; a standardised feature beyond it is a data
        problem to stop for, not a number to encrypt.

    Returns
    -------
    np.ndarray of int64
        ``round(X * 2**frac_bits)``, same shape as ``X``.

    Raises
    ------
    CodecError
        On NaN/inf, ``|x| > max_abs`` (naming index, value and limit), a
        non-numeric dtype, or a range that does not fit int64.
    """
    if not isinstance(frac_bits, int) or not 0 <= frac_bits <= 62:
        raise CodecError(f"feature frac_bits must be an int in [0, 62], got {frac_bits!r}")
    if _floor_scaled(max_abs, frac_bits) >= _INT64_LIMIT:
        raise CodecError(
            f"max_abs={max_abs!r} at {frac_bits} fractional bits does not fit int64; "
            "lower max_abs or frac_bits"
        )
    arr = check_numeric_array(X, "X")
    check_finite_in_range(arr, max_abs, "X")
    return np.rint(arr.astype(np.float64) * math.ldexp(1.0, frac_bits)).astype(np.int64)


def max_plain_bits(
    rows: int, feature_max_abs: float, value_max_abs: float, frac_bits_sum: int
) -> int:
    """Bit length bounding ``|Xᵀd|`` entries the codec allows; sizes masks.

    Each term is ``round(x 2^a) · round(d 2^b)`` with ``a + b = frac_bits_sum``;
    rounding adds at most ½ to each factor, which is at most a factor 2.25 when
    both scaled bounds are ≥ 1, so two bits of slack cover it.

    Parameters
    ----------
    rows : int
        Number of terms in each sum (batch rows).
    feature_max_abs : float
        Bound on ``|x|`` (the ``max_abs`` given to :func:`quantise_features`).
    value_max_abs : float
        Bound on ``|d|`` (the codec's ``max_abs``).
    frac_bits_sum : int
        ``frac_bits`` of the product, i.e. codec bits + feature bits.

    Returns
    -------
    int
        ``B`` such that every allowed entry's integer satisfies ``|s| < 2**B``.
        A mask of ``B + σ`` uniform bits hides it with statistical distance
        ``2**-σ``.
    """
    if rows < 1 or feature_max_abs <= 0 or value_max_abs <= 0 or frac_bits_sum < 0:
        raise CodecError(
            "max_plain_bits needs rows >= 1, positive bounds and frac_bits_sum >= 0, got "
            f"rows={rows}, feature_max_abs={feature_max_abs}, value_max_abs={value_max_abs}, "
            f"frac_bits_sum={frac_bits_sum}"
        )
    bound = Fraction(rows) * Fraction(feature_max_abs) * Fraction(value_max_abs)
    bound *= 1 << frac_bits_sum
    return math.ceil(bound).bit_length() + 2
