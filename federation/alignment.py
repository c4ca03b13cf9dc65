"""The bank's split of the aligned rows into train, validation and test.

After PSI the bank alone holds the labels, so it alone can stratify. It
sends the platform only the resulting position lists (DESIGN §3 step 2).
"""

from __future__ import annotations

import numpy as np


def split_positions(
    y: np.ndarray, test_fraction: float, validation_fraction: float, *, seed: int,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (sorted) of the train, validation and test rows of the aligned set.

    ``validation_fraction`` is taken of the rows left after the test split, so
    a 0.2/0.2 split gives 64% / 16% / 20%. Stratifying on the label keeps the
    default rate equal across the three, which a small validation set needs
    for a stable early-stopping signal.
    """
    # Imported here: scikit-learn takes over a second to import, and in Flower's
    # deployment engine every message starts a fresh ClientApp process that would
    # pay it, while only the bank's one split needs it.
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(y))
    rest, test = train_test_split(positions, test_size=test_fraction, random_state=seed,
                                  stratify=y if stratify else None)
    train, val = train_test_split(rest, test_size=validation_fraction, random_state=seed,
                                  stratify=y[rest] if stratify else None)
    return np.sort(train), np.sort(val), np.sort(test)
