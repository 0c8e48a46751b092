"""The data: scikit-learn's bundled digits (no download), split train / held-out."""

from __future__ import annotations

import numpy as np


def load_digits_split(
    heldout_fraction: float = 0.2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Loads scikit-learn's digits as NHWC float32 images in [0, 1], split train / held-out.

    Args:
      heldout_fraction: share of the 1797 images kept out of training.
      seed: seed of the NumPy permutation that decides the split (fixed, so the split is the
        same in every run).

    Returns:
      ``(train, heldout)``, each [n, 8, 8, 1] float32. The digits' pixel values (integers
      0..16) are divided by 16.
    """
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0  # [1797, 8, 8]
    images = images[..., None]  # NHWC, one channel
    order = np.random.default_rng(seed).permutation(len(images))
    n_heldout = round(len(images) * heldout_fraction)
    return images[order[n_heldout:]], images[order[:n_heldout]]
