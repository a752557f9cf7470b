"""Tiny generated interaction data in MMRec's format, where interactions depend on features.

Shared by tests/recsys (the recommender tests) and tests/apps (the ``mmpc recsys`` CLI tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["make_mmrec_folder"]


def make_mmrec_folder(
    out: Path,
    users: int = 120,
    items: int = 80,
    per_user: int = 12,
    dim: int = 8,
    seed: int = 0,
    popularity: float = 0.0,
) -> Path:
    """Write ``tiny.inter`` + ``text_feat.npy`` (16-d) + ``image_feat.npy`` (24-d) to ``out``.

    User u picks ``per_user`` items by Gumbel-top-k over ``3 <U_u, V_i> + popularity * b_i``; the
    features are noisy linear maps of V, so they carry the signal. Split per user: last two picks
    are valid / test (shuffled), the rest train.
    """
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((users, dim))
    V = rng.standard_normal((items, dim))
    bias = rng.standard_normal(items)
    logits = 3.0 * U @ V.T / np.sqrt(dim) + popularity * bias + rng.gumbel(size=(users, items))
    picks = np.argsort(-logits, axis=1)[:, :per_user]
    rows = []
    for u in range(users):
        chosen = rng.permutation(picks[u])
        labels = [0] * (per_user - 2) + [1, 2]
        rows += [(u, int(i), 5.0, 0, lab) for i, lab in zip(chosen, labels, strict=True)]
    frame = pd.DataFrame(rows, columns=["userID", "itemID", "rating", "timestamp", "x_label"])
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "tiny.inter", sep="\t", index=False)
    text = V @ rng.standard_normal((dim, 16)) + 0.3 * rng.standard_normal((items, 16))
    image = np.maximum(
        V @ rng.standard_normal((dim, 24)) + 0.3 * rng.standard_normal((items, 24)), 0
    )
    np.save(out / "text_feat.npy", text.astype(np.float32))
    np.save(out / "image_feat.npy", image.astype(np.float32))
    return out
