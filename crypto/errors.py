"""Exceptions of the Paillier layer (one hierarchy, so callers can catch it whole).

Every message says what was wrong and what to do about it: a protocol step
that fails on a ciphertext should tell the operator whether the cause is a
key mix-up, a value out of the codec's range or a damaged payload.
"""

from __future__ import annotations

__all__ = ["CodecError", "CryptoError", "InsecureKeyError", "KeyMismatchError"]


class CryptoError(Exception):
    """Base class: anything the crypto layer refuses to do or cannot do."""


class CodecError(CryptoError, ValueError):
    """A value cannot be represented by the fixed-point codec, or a decoded
    value is outside the codec's range (which means the sum wrapped around n).

    Also a ``ValueError`` so that input-validation code that already catches
    ``ValueError`` keeps working.
    """


class KeyMismatchError(CryptoError):
    """A ciphertext, private key or payload belongs to another Paillier key
    than the one it is used with."""


class InsecureKeyError(CryptoError):
    """A key (or a parameter derived from it) is too weak for real data."""
