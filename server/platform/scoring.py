"""The platform's half of federated inference (DESIGN §4.4).

For an authorized subject the platform computes ``u_p`` — its part's partial
logit on its own standardised features — and the per-catalog-item sums of
the feature contributions, so the bank can give reason codes that name a
catalog item ("水费信息") and never a platform feature or value. Unauthorized
subjects get nothing; the route decides that before calling here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.config import PlatformSettings
from server.parts import FeatureTable, ServedPart

__all__ = ["PartialScore", "PlatformScorer"]


def derived_feature_items() -> dict[str, int]:
    """Catalog item of each derived platform feature (``lab.features``): its first source.

    So a model trained on a feature snapshot needs no mapping in the settings;
    the settings' ``feature_items`` add or override entries (other feature tables).
    """
    from lab.catalog import get_item
    from lab.features import DEFINITIONS

    return {d.name: get_item(d.sources[0]).number for d in DEFINITIONS if d.sources}


@dataclass(frozen=True)
class PartialScore:
    """``u_p`` of one subject and its contributions summed per catalog item."""

    partial_logit: float
    item_contributions: dict[int, float]


class PlatformScorer:
    """The platform's served model parts and serving features.

    Parameters
    ----------
    parts : list of ServedPart
        Platform parts, addressed by their ``part_id`` (the model id a bank sends).
    features : FeatureTable or None
        Serving features with at least every part's columns.
    feature_items : dict
        Catalog item (1..10) of each platform feature not derived by ``lab.features``
        (whose items are known from their definitions).
    bank_of : dict
        ``part_id`` → name of the bank institution each part is served to.

    Raises
    ------
    ValueError
        If a part is not a platform part, a feature has no catalog item, or the
        feature table lacks a part's column — at start-up, not on a request.
    """

    def __init__(self, parts: list[ServedPart], features: FeatureTable | None,
                 feature_items: dict[str, int], bank_of: dict[str, str]) -> None:
        self.parts = {p.part_id: p for p in parts}
        self.bank_of = bank_of
        self.features = features
        feature_items = {**derived_feature_items(), **feature_items}
        self.item_of: dict[str, list[int]] = {}
        for part in parts:
            if part.role != "platform":
                raise ValueError(f"part {part.part_id} is a {part.role!r} part; the platform "
                                 "serves only its own parts")
            unmapped = [f for f in part.feature_names if f not in feature_items]
            if unmapped:
                raise ValueError(
                    f"platform features without a catalog item: {', '.join(unmapped)}; add them "
                    "to feature_items (CREDITLAB_FEATURE_ITEMS) so reasons can name the item")
            if features is None:
                raise ValueError("models are configured but no serving features "
                                 "(CREDITLAB_FEATURES)")
            missing = [f for f in part.feature_names if f not in features.feature_names]
            if missing:
                raise ValueError(f"the serving features lack the columns {', '.join(missing)} "
                                 f"of part {part.part_id}")
            self.item_of[part.part_id] = [feature_items[f] for f in part.feature_names]
            if not bank_of.get(part.part_id):
                raise ValueError(f"part {part.part_id} names no bank to serve it to")

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> PlatformScorer:
        """Load every configured part and the feature columns they need."""
        loaded = [(ServedPart.load(Path(d)), bank) for d, bank in settings.models.items()]
        parts = [part for part, _ in loaded]
        columns = sorted({f for p in parts for f in p.feature_names})
        features = None
        if parts and settings.features is not None:
            features = FeatureTable.from_csv(settings.features,
                                             id_column=settings.features_id_column,
                                             features=columns)
        return cls(parts, features, settings.feature_items,
                   {part.part_id: bank for part, bank in loaded})

    def part_for(self, model_id: str, bank: str) -> ServedPart | None:
        """The part ``model_id`` if it is served to the institution named ``bank``, else None.

        Another bank's part is answered like an unknown one (no hint that it exists).
        """
        part = self.parts.get(model_id)
        return part if part is not None and self.bank_of[model_id] == bank else None

    def items_of(self, model_id: str) -> list[int]:
        """The catalog items a model's features come from (sorted, distinct)."""
        return sorted(set(self.item_of[model_id]))

    def score(self, model_id: str, subject: str) -> PartialScore | None:
        """``u_p`` and item contributions of ``subject``; None if it has no features here."""
        part = self.parts[model_id]
        assert self.features is not None
        row = self.features.row(subject, part.feature_names)
        if row is None:
            return None
        logit, contributions = part.contributions(row)
        per_item: dict[int, float] = {}
        for item, value in zip(self.item_of[model_id], contributions, strict=True):
            per_item[item] = per_item.get(item, 0.0) + float(value)
        return PartialScore(partial_logit=logit, item_contributions=per_item)
