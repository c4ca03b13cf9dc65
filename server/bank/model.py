"""The bank's served model: its own part, the platform part it pairs with, and the scale.

Loaded once at start-up from what the main job saved: the bank's part
(``runs/<exp>/<run>/bank/model``, hash-checked) and the run's
``manifest.json``, which names the platform part (id and SHA-256) the bank
part was trained with. A partial score from any other platform part is
refused — combining halves of two different models would be a fabricated
score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.catalog import get_item
from models.scorecard import band_of, sigmoid
from server.bank.schemas import ModelOut, ReasonCode
from server.config import BankSettings
from server.parts import FeatureTable, ServedPart

__all__ = ["BankModel", "Combined"]


@dataclass(frozen=True)
class Combined:
    """A finished score of one enterprise."""

    logit: float
    pd: float
    points: float
    band: str
    band_label: str
    reasons: list[ReasonCode]


MAX_STANDARD_DEVIATIONS = 200
"""How far from the training mean a bank feature may lie and still be scored.

Heavy tails are real (default_credit's payment amounts reach 73 σ), and no
training value can lie beyond √(n−1) σ (Samuelson's inequality), so 200 σ
refuses no value like those of a training set of up to 40,000 rows, while
an amount in fen for yuan, or 1e308, is far beyond it.
"""


class BankModel:
    """Scores with the bank part + the platform's partial score, calibrated and scaled.

    Parameters
    ----------
    settings : BankSettings
        Where the part and manifest are, the scale, calibration, bands.
    """

    def __init__(self, settings: BankSettings) -> None:
        self.settings = settings
        self.part = ServedPart.load(settings.model_dir)
        if self.part.role != "bank":
            raise ValueError(f"{settings.model_dir} holds a {self.part.role!r} part; the bank "
                             "API serves the bank's own part")
        manifest = json.loads(Path(settings.manifest_path).read_text(encoding="utf-8"))
        parts = {p["role"]: p for p in manifest["parts"]}
        if parts.get("bank", {}).get("sha256") != self.part.sha256:
            raise ValueError(f"{settings.manifest_path} does not list the bank part in "
                             f"{settings.model_dir} (hash differs): use the manifest of the "
                             "run that saved this part")
        self.platform_part_id = str(parts["platform"]["part_id"])
        self.platform_sha256 = str(parts["platform"]["sha256"])
        self.experiment = str(manifest.get("experiment", self.part.metadata.get("experiment")))
        run = Path(settings.manifest_path).resolve().parent.name
        self.version = f"{self.experiment}/{run}/{self.part.sha256[:8]}-{self.platform_sha256[:8]}"
        self.features: FeatureTable | None = None
        if settings.features is not None:
            self.features = FeatureTable.from_csv(settings.features,
                                                  id_column=settings.features_id_column,
                                                  features=self.part.feature_names)

    def info(self) -> ModelOut:
        """What ``GET /v1/model`` shows."""
        scale = self.settings.scaling
        return ModelOut(
            model_version=self.version, experiment=self.experiment,
            bank_part_id=self.part.part_id, bank_part_sha256=self.part.sha256,
            platform_part_id=self.platform_part_id, platform_part_sha256=self.platform_sha256,
            bank_features=self.part.feature_names, base_points=scale.base_points,
            base_odds=scale.base_odds, pdo=scale.pdo)

    def bank_row(self, uscc: str, given: dict[str, float] | None) -> np.ndarray | None:
        """The applicant's bank features in model order: as given, or from the bank's store.

        Raises
        ------
        ValueError
            If given features miss or add names (listing them, not values).
        """
        names = self.part.feature_names
        if given is not None:
            missing = [n for n in names if n not in given]
            extra = [n for n in given if n not in names]
            if missing or extra:
                raise ValueError(
                    "features must be exactly the model's bank features"
                    + (f"; missing: {', '.join(missing)}" if missing else "")
                    + (f"; unknown: {', '.join(extra[:10])}" if extra else ""))
            row = np.array([given[n] for n in names], dtype=np.float64)
        elif self.features is None:
            return None
        else:
            row = self.features.row(uscc, names)
            if row is None:
                return None
        self._check_range(row, "sent" if given is not None else "in the bank's feature store")
        return row

    def _check_range(self, row: np.ndarray, where: str) -> None:
        """Refuse values no training row came near: a linear model would extrapolate wildly.

        An amount in fen instead of yuan, or a placeholder such as 1e308,
        lands hundreds of standard deviations out and would score as certain
        default (or none); the limit leaves every plausible outlier alone.
        """
        z = np.abs(self.part.standardiser.transform(row.reshape(1, -1))[0])
        far = [name for name, value in zip(self.part.feature_names, z, strict=True)
               if not value <= MAX_STANDARD_DEVIATIONS]
        if far:
            raise ValueError(
                f"features {where} lie more than {MAX_STANDARD_DEVIATIONS} standard deviations "
                f"from the training data's mean: {', '.join(far)}; check their units (a "
                "fraction, not a percent; yuan, not fen)")

    def combine(self, x_bank: np.ndarray, platform_logit: float,
                item_contributions: dict[int, float]) -> Combined:
        """u_b + u_p → calibrated PD, points, band and the top adverse reasons (DESIGN §4.4)."""
        settings = self.settings
        u_b, contributions = self.part.contributions(x_bank)
        logit = u_b + platform_logit
        calibrated = settings.calibration.apply(logit)
        points = settings.scaling.points_from_logit(calibrated)
        band = band_of(points, settings.bands)
        per_point = settings.scaling.factor * settings.calibration.slope
        candidates = [(float(c), "bank", f"B-{name}", name)
                      for name, c in zip(self.part.feature_names, contributions, strict=True)]
        candidates += [(float(c), "platform", f"P-{item:02d}", get_item(item).name_zh)
                       for item, c in item_contributions.items()]
        adverse = sorted((c for c in candidates if c[0] > 0), key=lambda c: -c[0])
        reasons = [ReasonCode(code=code, source=source, name=name, contribution=value,  # type: ignore[arg-type]
                              points=round(value * per_point, 2))
                   for value, source, code, name in adverse[:settings.reason_codes]]
        return Combined(logit=logit, pd=float(sigmoid(calibrated)), points=points,
                        band=band.name, band_label=band.label, reasons=reasons)
