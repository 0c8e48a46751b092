"""Every public function of arrays exports with a symbolic batch dimension.

``jax.export`` with ``jax.export.symbolic_shape("b, ...")`` on the leading axis of each batched
argument (``public_calls.CALLS``), serialised and deserialised; the exported call, at a
batch size other than the one traced, equals the direct call. Functions whose batch size is a static argument
(``public_calls.STATIC_BATCH``) export with their fixed batch.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax import export
from public_calls import CALLS, STATIC_BATCH, as_jax


def _avals(args, batched, b):
    out = []
    for k, a in enumerate(args):
        shape = tuple(a.shape)
        if k in batched:
            shape = (b, *shape[1:])
        out.append(jax.ShapeDtypeStruct(shape, a.dtype))
    return out


def _roundtrip(exported):
    return export.deserialize(exported.serialize())


def _equal(got, want, name):
    got, want = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(got) == len(want), name
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)


def _flat(fn):
    """The exported function returns a flat list (dataclass results are pytrees)."""
    return lambda *a: jax.tree.leaves(fn(*a))


@pytest.mark.parametrize("name", sorted(CALLS))
def test_export_with_a_symbolic_batch_matches_the_direct_call(name):
    call = CALLS[name]
    (b,) = export.symbolic_shape("b")
    avals = _avals(call.args(2), call.batched, b)
    exported = _roundtrip(export.export(jax.jit(_flat(call.fn)))(*avals))
    for size in (3,):
        args = as_jax(call.args(size))
        _equal(exported.call(*args), _flat(call.fn)(*args), f"{name} at batch {size}")


@pytest.mark.parametrize("name", sorted(STATIC_BATCH))
def test_static_batch_functions_export(name):
    fn = STATIC_BATCH[name]
    key = jax.random.key(1)
    exported = _roundtrip(export.export(jax.jit(_flat(fn)))(key))
    _equal(exported.call(key), _flat(fn)(key), name)
