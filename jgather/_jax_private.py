"""The one place jgather reads private JAX API: a tracer's producing equation.

``broadcast_operand`` finds out at trace time that a traced index was made by
``jnp.broadcast_to`` / ``x[:, None]`` inside the same ``jax.jit``. It reads
``tracer.parent`` and ``eqn.in_tracers`` (not public API) and fails safe: on anything it does
not recognise it returns None and the caller takes its general path.
``tests/test_hlo_structure.py`` notices when JAX changes these internals.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax import lax

from jgather import _checks

# How many value-preserving conversions to step through before giving up.
_MAX_CONVERSIONS = 4


def _preserves_values(old: Any, new: Any) -> bool:
    """Whether converting ``old`` to ``new`` keeps every value (int8 -> int32, not back)."""
    return bool(np.can_cast(np.dtype(old), np.dtype(new), casting="safe"))


def broadcast_operand(index: Any, dim: int) -> jax.Array | None:
    """The axes up to ``dim`` of a traced ``index`` that is constant along the axes after it.

    Returns ``index[..., 0, ..., 0]`` (the trailing axes dropped, built from the broadcast's
    operand, in ``index``'s dtype) when ``index`` is the result of a ``broadcast_in_dim``
    that adds or expands only axes after ``dim``, possibly followed by conversions that keep
    every value; None otherwise (a narrowing conversion, such as int32 -> int8, changes
    values and stops the search: the broadcast operand is then not the index).
    """
    if not _checks.is_traced(index):
        return None
    lead = tuple(index.shape[: dim + 1])
    node: Any = index
    try:
        for _ in range(_MAX_CONVERSIONS + 1):
            eqn = getattr(node, "parent", None)
            if eqn is None:
                return None
            name = eqn.primitive.name
            if name == "convert_element_type":
                source = eqn.in_tracers[0]
                if not _preserves_values(source.dtype, node.dtype):
                    return None
                node = source
                continue
            if name != "broadcast_in_dim":
                return None
            operand = eqn.in_tracers[0]
            dims = tuple(eqn.params["broadcast_dimensions"])
            if tuple(eqn.params["shape"]) != tuple(index.shape) or len(dims) != operand.ndim:
                return None
            keep = [k for k, d in enumerate(dims) if d <= dim]
            if any(operand.shape[k] != 1 for k, d in enumerate(dims) if d > dim):
                return None
            squeezed = operand.reshape(tuple(operand.shape[k] for k in keep))
            first = lax.broadcast_in_dim(squeezed, lead, tuple(dims[k] for k in keep))
            return first.astype(index.dtype)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None
    return None
