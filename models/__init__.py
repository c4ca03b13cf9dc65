"""Party-local model math, importing nothing of the lab but ``crypto`` leaf helpers.

- ``taylor``      — Taylor-approximated logistic loss and its residual (why: linear in z)
- ``lr``          — ``LRPart`` per party, optimizer config, mini-batch schedule,
                    batch-size guard, the central Taylor reference
- ``metrics``     — AUC, KS, Gini and plot points
- ``reference``   — exact-loss scikit-learn LR, for comparison only
- ``preprocess``  — per-party standardisation fitted on training rows
- ``persistence`` — saving/loading a part with a hash, no pickle
"""
