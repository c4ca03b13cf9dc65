"""Two-key vertical logistic regression (DESIGN §4.1), one class per party role.

Bank B holds labels ``y``, features ``X_b`` (plus the intercept) and key pair
``sk_B``; platform P holds ``X_p`` and ``sk_P``. With the second-order Taylor
loss at z = 0 the residual is linear in the logit,

    d = ¼z + ½ − y,   z = u_b + u_p,   u_b = X_b·w_b + b,   u_p = X_p·w_p,

so each party's gradient ``Xᵀd / m`` splits into a part it computes alone and a
part that needs the other side's vector, which travels encrypted under the
owner's key. One optimisation step is three message round trips:

1. ``B → P: [[d_b]]_B`` with d_b = ¼u_b + ½ − y;   ``P → B: [[¼u_p]]_P``.
2. ``P → B: [[X_pᵀd_b + r_P]]_B`` (P adds a fresh mask r_P);
   ``B → P: [[X_bᵀ¼u_p + r_B]]_P`` (B's ones column gives the intercept's term).
3. each decrypts the other's masked vector and returns it; the owner removes its
   mask, adds the half it computed in plaintext, and steps its own optimizer
   (that step rides on the next step's first message).

Loss, when asked, is computed under encryption and revealed to the bank only:
the terms of ℓ(z) ≈ log 2 + z/2 + z²/8 − y·z that involve u_p are
``u_p·d_b + u_p²/8``, so P returns ``[[Σ u_p·d_b + Σ u_p²/8]]_B`` — one number —
and B adds its own terms.

Threat model (also stated in the model card): both parties are semi-honest
(they follow the protocol and try to learn from what they see); the
coordinator relays and may be curious but holds no key, so it can decrypt
nothing. Masks are drawn fresh per step and at least 2^40 times wider than
the largest gradient entry the fixed-point codec allows, so a decrypted
masked value is statistically independent of the gradient. Known limit: a
party's exact gradient is a weighted sum of the other side's residuals or
partial logits, so a *malicious* party that crafts its own feature columns
(an indicator of one row, say) could learn single values. Mitigations: the
platform's feature definitions are published and checkable, and the
batch-size guard (≥ 4 × the larger side's feature count, FATE issue 3691)
keeps the system of equations under-determined for honest features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crypto.codec import FixedPointCodec, max_plain_bits, quantise_features
from crypto.paillier import DJNEncryptor
from crypto.vector import (
    EncryptedVector,
    add_mask,
    decrypt_residues,
    decrypt_vector,
    draw_mask,
    encrypt_vector,
    pack,
    rerandomize,
    unmask,
    unpack,
    xt_e,
)
from models.lr import LRPart
from models.taylor import taylor_residual

FEATURE_FRAC_BITS = 16
"""Fixed-point fraction bits of features inside XᵀE: 2^-16 ≈ 1.5e-5 per entry,
far below what moves an AUC, and it keeps each exponent short (≈ 22 bits for
|x| < 50), which is what makes bucketed multi-exponentiation cheap."""

MASK_MARGIN_BITS = 48
"""Masks are this many bits wider than the largest entry the codec allows
(the acceptance floor is 40)."""

FEATURE_MAX_ABS = 1024.0
"""Largest |standardised feature| accepted in the encrypted products; a value
beyond it is a data problem worth stopping for, not a number to wrap around."""


@dataclass
class StepVectors:
    """What a party keeps between the messages of one step (never sent)."""

    rows: np.ndarray
    own_vector: np.ndarray
    mask: list[int] | None = None


class _Party:
    """Shared state and arithmetic of either role."""

    role = ""

    def __init__(
        self,
        X: np.ndarray,
        part: LRPart,
        public_key,
        private_key,
        peer_public_key,
        *,
        codec: FixedPointCodec | None = None,
        pool=None,
    ) -> None:
        self.X = np.asarray(X, dtype=np.float64)
        self.part = part
        self.public_key = public_key
        self.private_key = private_key
        self.peer_public_key = peer_public_key
        self.codec = codec or FixedPointCodec()
        self.pool = pool
        self.encryptor = DJNEncryptor(public_key, private_key=private_key)
        """Encrypts under our own key; knowing p and q it computes randomness by CRT."""
        self.peer_encryptor = DJNEncryptor(peer_public_key)
        """Encrypts zeros under the peer's key, to re-randomise what we send back to it."""
        self.pending: StepVectors | None = None

    def prefetch_randomness(self, rows: int) -> None:
        """Start the next step's encryption randomness on our pool, then return.

        Called after we reply, while the peer computes: our pool workers
        precompute the factors for our next encryption (``rows`` values under
        our own key) and for re-randomising what we send back (one per
        feature, plus the intercept, under the peer's key). See
        :meth:`crypto.paillier.DJNEncryptor.refill_in_background`.
        """
        self.encryptor.pool_size = max(self.encryptor.pool_size, rows)
        self.encryptor.refill_in_background(rows, pool=self.pool)
        self.peer_encryptor.refill_in_background(self.X.shape[1] + 1, pool=self.pool)

    # -- helpers ---------------------------------------------------------------------------
    def _quantised(self, X: np.ndarray) -> np.ndarray:
        return quantise_features(X, FEATURE_FRAC_BITS, max_abs=FEATURE_MAX_ABS)

    def _largest_bits(self, rows: int) -> int:
        """Bit length bounding |entry| of a product over ``rows`` rows (the codec's limits)."""
        return max_plain_bits(rows, FEATURE_MAX_ABS, self.codec.max_abs,
                              self.codec.frac_bits + FEATURE_FRAC_BITS)

    def mask_bits(self, rows: int) -> int:
        """Width of a fresh mask for a sum over ``rows`` products (why: DESIGN §4.1 guard)."""
        return self._largest_bits(rows) + MASK_MARGIN_BITS

    def _slot_bits(self, rows: int) -> int:
        """Width of one packed masked entry: offset value < 2^(largest+1), plus the mask."""
        return self.mask_bits(rows) + 1

    def _masked_product(self, X_rows: np.ndarray, peer_vector: EncryptedVector
                        ) -> tuple[EncryptedVector, list[int]]:
        """[[X_rowsᵀ v + r]] under the peer's key, packed, and what we subtract later.

        Each entry gets a fresh mask plus the offset ``2^largest``, which makes
        it a non-negative integer below ``2^slot_bits`` so several entries
        share one ciphertext (:func:`crypto.vector.pack`): the peer decrypts
        one ciphertext per ~15 entries at 2048 bits. Re-randomised before it
        leaves: the peer chose the randomness inside [[v]] and holds the key,
        so a product left as is would let it test guesses about our features
        through the ciphertexts' randomness.
        """
        rows = X_rows.shape[0]
        product = xt_e(self._quantised(X_rows), FEATURE_FRAC_BITS, peer_vector, pool=self.pool)
        offset = 1 << self._largest_bits(rows)
        mask = [r + offset for r in draw_mask(len(product), self.mask_bits(rows))]
        packed = pack(add_mask(product, mask), self._slot_bits(rows))
        return rerandomize(packed, self.peer_encryptor), mask

    def decrypt_for_peer(self, masked: EncryptedVector) -> list[int]:
        """Decrypt the peer's packed masked vector under our key; we see only masked values."""
        return decrypt_residues(self.private_key, masked)

    def _unmask(self, residues: list[int], frac_bits: int) -> np.ndarray:
        assert self.pending is not None and self.pending.mask is not None
        mask, n = self.pending.mask, self.peer_public_key.n
        values = unpack(residues, len(mask), self._slot_bits(len(self.pending.rows)), n)
        return unmask(values, mask, n, frac_bits, self.codec)

    @property
    def product_frac_bits(self) -> int:
        return self.codec.frac_bits + FEATURE_FRAC_BITS


class BankParty(_Party):
    """The label holder: encrypts residuals, learns the loss, keeps the intercept."""

    role = "bank"

    def __init__(self, X: np.ndarray, y: np.ndarray, part: LRPart, public_key, private_key,
                 peer_public_key, **kwargs) -> None:
        super().__init__(X, part, public_key, private_key, peer_public_key, **kwargs)
        self.y = np.asarray(y, dtype=np.float64)
        self.X1 = np.hstack([self.X, np.ones((self.X.shape[0], 1))])
        """Features plus a ones column: its cross term Σ¼u_p is the intercept's gradient."""

    def residuals(self, rows: np.ndarray) -> np.ndarray:
        return taylor_residual(self.part.partial_logit(self.X[rows]), self.y[rows])

    def encrypt_residuals(self, rows: np.ndarray) -> EncryptedVector:
        """Step 1: [[d_b]]_B for a batch; d_b stays here for our own half of the gradient."""
        d_b = self.residuals(rows)
        self.pending = StepVectors(rows=rows, own_vector=d_b)
        return encrypt_vector(self.encryptor, d_b, self.codec, pool=self.pool)

    def masked_gradient(self, quarter_up: EncryptedVector) -> EncryptedVector:
        """Step 2: [[X_bᵀ¼u_p + r_B]]_P (intercept term last); the mask stays here."""
        assert self.pending is not None
        masked, self.pending.mask = self._masked_product(self.X1[self.pending.rows], quarter_up)
        return masked

    def apply_gradient(self, residues: list[int]) -> np.ndarray:
        """Step 3: unmask the platform-decrypted cross term, add ours, step the optimizer."""
        assert self.pending is not None
        rows, d_b = self.pending.rows, self.pending.own_vector
        cross = self._unmask(residues, self.product_frac_bits)
        grad = (self.X1[rows].T @ d_b + cross) / len(rows)
        self.part.step(grad[:-1], float(grad[-1]))
        self.pending = None
        return grad

    # -- loss ------------------------------------------------------------------------------
    def own_loss_terms(self, rows: np.ndarray) -> float:
        """Σ over rows of log 2 + u_b/2 + u_b²/8 − y·u_b (the terms without u_p)."""
        u_b = self.part.partial_logit(self.X[rows])
        y = self.y[rows]
        return float(np.sum(np.log(2.0) + u_b / 2 + u_b**2 / 8 - y * u_b))

    def decrypt_loss(self, rows: np.ndarray, cross_terms: EncryptedVector) -> float:
        """Mean Taylor loss over ``rows`` from P's encrypted Σ u_p·d_b + Σ u_p²/8."""
        cross = float(decrypt_vector(self.private_key, cross_terms, self.codec)[0])
        return (self.own_loss_terms(rows) + cross) / len(rows)

    def encrypt_loss_residuals(self, rows: np.ndarray) -> EncryptedVector:
        """[[d_b]]_B on rows whose loss we want (validation), without touching the step."""
        return encrypt_vector(self.encryptor, self.residuals(rows), self.codec, pool=self.pool)

    # -- inference -------------------------------------------------------------------------
    def scores(self, rows: np.ndarray, platform_partial: np.ndarray) -> np.ndarray:
        """Logit z = u_b + u_p for rows the bank scores (DESIGN §4.4)."""
        return self.part.partial_logit(self.X[rows]) + platform_partial


class PlatformParty(_Party):
    """The feature holder: encrypts its quarter logits, never sees a label."""

    role = "platform"

    def encrypt_quarter_logits(self, rows: np.ndarray) -> EncryptedVector:
        """Step 1: [[¼u_p]]_P; ¼u_p stays here for our own half of the gradient."""
        quarter = 0.25 * self.part.partial_logit(self.X[rows])
        self.pending = StepVectors(rows=rows, own_vector=quarter)
        return encrypt_vector(self.encryptor, quarter, self.codec, pool=self.pool)

    def masked_gradient(self, residuals: EncryptedVector) -> tuple[EncryptedVector,
                                                                   EncryptedVector]:
        """Step 2: [[X_pᵀd_b + r_P]]_B, plus the loss cross terms [[Σu_p·d_b + Σu_p²/8]]_B.

        The loss terms ride in the same product as an extra column (u_p), so
        the bank learns its training loss for the price of one more column.
        """
        assert self.pending is not None
        rows = self.pending.rows
        masked, self.pending.mask = self._masked_product(self.X[rows], residuals)
        return masked, self.loss_terms(rows, residuals)

    def loss_terms(self, rows: np.ndarray, residuals: EncryptedVector) -> EncryptedVector:
        """[[Σ u_p·d_b + Σ u_p²/8]]_B over ``rows``: one number, for the bank's loss."""
        u_p = self.part.partial_logit(self.X[rows])
        product = xt_e(self._quantised(u_p[:, None]), FEATURE_FRAC_BITS, residuals,
                       pool=self.pool)
        square_term = self.codec.encode(np.array([np.sum(u_p**2) / 8]))[0]
        return rerandomize(add_mask(product, [square_term << FEATURE_FRAC_BITS]),
                           self.peer_encryptor)

    def apply_gradient(self, residues: list[int]) -> np.ndarray:
        """Step 3: unmask the bank-decrypted X_pᵀd_b, add X_pᵀ¼u_p, step the optimizer."""
        assert self.pending is not None
        rows, quarter = self.pending.rows, self.pending.own_vector
        cross = self._unmask(residues, self.product_frac_bits)
        grad = (cross + self.X[rows].T @ quarter) / len(rows)
        self.part.step(grad)
        self.pending = None
        return grad

    def partial_scores(self, rows: np.ndarray) -> np.ndarray:
        """u_p for rows the bank scores: the one plaintext per-row value that leaves P,
        in the inference phase only, and labelled so in the ledger."""
        return self.part.partial_logit(self.X[rows])

