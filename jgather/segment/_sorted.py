"""Helpers shared by the sorted-segment families in ``_coo`` and ``_csr``.

Their reduction axis is ``index.ndim - 1`` (``indptr.ndim - 1``); the index's leading axes
broadcast against ``src``'s (each equal or 1), as torch_scatter expands them.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jgather.segment import _arguments

REDUCES = ("sum", "add", "mean", "min", "max")


def lead_index(
    fn: str, name: str, index: Any, src: jax.Array, *, whole: bool
) -> tuple[jax.Array, Any]:
    """The index aligned to ``src``'s leading axes (trailing size-1 axes appended).

    ``whole``: the last index axis must match ``src`` too (segment_coo); otherwise it is free
    (gather_coo's output length, segment_csr's pointers).
    """
    index, wide = _arguments.as_index(fn, index, name)
    if index.ndim == 0:
        raise ValueError(
            f"{fn}: {name} is 0-dimensional; it needs at least one axis (its last axis is the "
            "one reduced along)."
        )
    if index.ndim > src.ndim:
        raise ValueError(
            f"{fn}: {name} has {index.ndim} dimensions (shape {index.shape}) but src only "
            f"{src.ndim} (shape {src.shape}); {name}.ndim must be <= src.ndim."
        )
    last = index.ndim - 1
    for d in range(index.ndim if whole else last):
        if index.shape[d] not in (1, src.shape[d]):
            raise ValueError(
                f"{fn}: {name} shape {index.shape} does not broadcast against src shape "
                f"{src.shape} at axis {d} ({index.shape[d]} vs {src.shape[d]}); its leading "
                "axes must equal src's or be 1 (torch_scatter's rule)."
            )
    return index.reshape(index.shape + (1,) * (src.ndim - index.ndim)), wide


def index_ndim(index: Any) -> int:
    return int(np.ndim(index))
