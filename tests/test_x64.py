"""64-bit index values never wrap into range, with x64 off and on, eagerly and under jit.

With x64 off a NumPy int64 index is checked at its full width before JAX narrows it to
int32 (eagerly: torch's IndexError), and a value that does not fit saturates instead of
wrapping (so mode='fill'/'drop'/'clip' treat it as the out-of-range value it is). With x64
on, jgather compares at full width before it narrows (XLA itself narrows gather and scatter
indices of small operands to int32, wrapping 2**32 + 1 into 1). Values tested: 2**31 - 1,
2**31, 2**32 + 1 and -2**32, on an axis of size 4.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather
from jgather import segment

VALUES = [2**31 - 1, 2**31, 2**32 + 1, -(2**32)]
X = np.arange(4.0, dtype=np.float32)


def _ops(mode_gather, mode_scatter):
    return {
        "gather": lambda x, i: jgather.gather(x, 0, i, mode=mode_gather),
        "take_along_dim": lambda x, i: jgather.take_along_dim(x, i, 0, mode=mode_gather),
        "index_select": lambda x, i: jgather.index_select(x, 0, i, mode=mode_gather),
        "scatter": lambda x, i: jgather.scatter(
            x, 0, i, jnp.ones(i.shape, x.dtype), mode=mode_scatter
        ),
        "scatter_add": lambda x, i: jgather.scatter_add(
            x, 0, i, jnp.ones(i.shape, x.dtype), mode=mode_scatter
        ),
        "scatter_reduce": lambda x, i: jgather.scatter_reduce(
            x, 0, i, jnp.ones(i.shape, x.dtype), "mean", include_self=False, mode=mode_scatter
        ),
        "take": lambda x, i: jgather.take(x, i, mode=mode_gather),
        "index_add": lambda x, i: jgather.index_add(
            x, 0, i, jnp.ones(i.shape, x.dtype), mode=mode_scatter
        ),
        "index_copy": lambda x, i: jgather.index_copy(
            x, 0, i, jnp.ones(i.shape, x.dtype), mode=mode_scatter
        ),
        "index_fill": lambda x, i: jgather.index_fill(x, 0, i, 1.0, mode=mode_scatter),
        "index_put": lambda x, i: jgather.index_put(
            x, (i,), jnp.ones(i.shape, x.dtype), mode=mode_scatter
        ),
        "put": lambda x, i: jgather.put(x, i, jnp.ones(i.shape, x.dtype), True, mode=mode_scatter),
        # jgather.segment shares the index handling: the same values, the same results.
        "segment.scatter_sum": lambda x, i: segment.scatter_sum(
            jnp.ones(i.shape, x.dtype), i, dim=0, out=x, mode=mode_scatter
        ),
        "segment.gather_coo": lambda x, i: segment.gather_coo(x, i, mode=mode_scatter),
    }


def _expected(name, value, clip=False):
    """What an out-of-range value does: fill NaN / drop, or with clip the clamped position."""
    if clip:
        pos = 0 if value < 0 else 3
        if name in ("gather", "take_along_dim", "index_select", "take", "segment.gather_coo"):
            return X[[pos]]
        out = X.copy()
        writes = ("scatter", "scatter_reduce", "index_copy", "index_fill", "index_put")
        out[pos] = 1.0 if name in writes else X[pos] + 1
        return out
    if name in ("gather", "take_along_dim", "index_select", "take"):
        return np.array([np.nan], np.float32)
    if name == "segment.gather_coo":  # torch_scatter's gathers read 0 where nothing is
        return np.zeros(1, np.float32)
    return X


def test_numpy_int64_index_raises_eagerly_at_full_width(x64):
    for fn in _ops(None, None).values():
        for value in VALUES:
            with pytest.raises(IndexError, match=f"index (value )?{value} is out of"):
                fn(jnp.asarray(X), np.array([value], np.int64))


@pytest.mark.parametrize("clip", [False, True], ids=["fill_drop", "clip"])
def test_wide_values_never_wrap_into_range(x64, clip):
    """Eager with mode='fill'/'drop'/'clip' and jitted with the default mode, in one call."""
    gm, sm = ("clip", "clip") if clip else ("fill", "drop")
    index = np.array([[v] for v in VALUES], np.int64)
    eager = {n: [f(jnp.asarray(X), row) for row in index] for n, f in _ops(gm, sm).items()}
    jit_ops = _ops("clip", "clip") if clip else _ops(None, None)
    jitted = jax.jit(
        lambda x, idx: {n: jax.vmap(lambda i, f=f: f(x, i))(idx) for n, f in jit_ops.items()}
    )
    # With x64 off jnp narrows the NumPy values (saturating, see jgather's as_index), so
    # the jitted call sees int32; with x64 on it sees the int64 values themselves.
    traced = jitted(jnp.asarray(X), jgather._indexing.as_index("t", "i", index)[0])
    for name in eager:
        for k, value in enumerate(VALUES):
            expected = _expected(name, value, clip)
            np.testing.assert_array_equal(eager[name][k], expected, err_msg=f"{name} {value}")
            np.testing.assert_array_equal(traced[name][k], expected, err_msg=f"{name} {value}")


def test_segment_sizes_and_pointers_are_read_at_full_width():
    """With x64 off a NumPy int64 index or indptr of jgather.segment is read at full width:
    out of range raises eagerly, and index.max() + 1 is not taken from a wrapped value."""
    with jax.enable_x64(False):
        wide = np.array([0, 2**32 + 1], np.int64)
        with pytest.raises(IndexError, match="4294967297"):
            segment.scatter_sum(jnp.ones(2), wide, dim_size=3)
        with pytest.raises(IndexError, match="4294967297"):
            segment.segment_coo(jnp.ones(2), wide, dim_size=3)
        with pytest.raises(IndexError, match="4294967297"):
            segment.gather_coo(jnp.ones(3), wide)
        with pytest.raises(IndexError, match="4294967297"):
            segment.segment_csr(jnp.ones(2), wide)
        with pytest.raises(ValueError, match="32-bit indices"):
            segment.scatter_sum(jnp.ones(2), wide)  # dim_size from the true maximum


def test_uint64_and_uint32_values_above_int32_stay_out_of_range(x64_on):
    for dtype, value in [(np.uint64, 2**63 + 1), (np.uint64, 2**32 + 1), (np.uint32, 2**31)]:
        idx = jnp.asarray(np.array([value], dtype))
        out = jax.jit(lambda x, i: jgather.gather(x, 0, i))(jnp.asarray(X), idx)
        np.testing.assert_array_equal(out, [np.nan])
        out = jax.jit(lambda x, i: jgather.scatter_add(x, 0, i, jnp.ones(1)))(
            jnp.asarray(X, jnp.float64), idx
        )
        np.testing.assert_array_equal(out, X)


def test_view_scatter_positions_and_fill_values_at_full_width(x64):
    """select_scatter's index and slice_scatter's start are Python ints, compared with the
    axis at full width; masked_fill checks a 64-bit value against the input's own dtype."""
    x = jnp.asarray(X)
    for value in VALUES:
        with pytest.raises(IndexError, match=f"index {value} is out of range"):
            jgather.select_scatter(x, jnp.float32(1), 0, np.int64(value))
        # start beyond the axis: an empty slice; far below it: clamped to the whole axis
        src = jnp.ones(0 if value > 0 else 4, x.dtype)
        want = X if value > 0 else np.ones(4, np.float32)
        np.testing.assert_array_equal(jgather.slice_scatter(x, src, 0, value), want)
    ints = jnp.zeros(2, jnp.int64 if x64 else jnp.int32)
    mask = np.array([True, False])
    if x64:
        np.testing.assert_array_equal(jgather.masked_fill(ints, mask, 2**40), [2**40, 0])
    else:
        with pytest.raises(ValueError, match="masked_fill: value=1099511627776 cannot be"):
            jgather.masked_fill(ints, mask, 2**40)


def test_embedding_index_values_never_wrap(x64):
    """embedding and embedding_bag read a NumPy int64 index at full width: eagerly torch's
    IndexError; under jit the row reads NaN (embedding) or the entry leaves its bag."""
    weight = jnp.asarray(X)[:, None]
    for value in VALUES:
        index = np.array([value], np.int64)
        with pytest.raises(IndexError, match=f"index {value} is out of"):
            jgather.embedding(index, weight)
        with pytest.raises(IndexError, match=f"index {value} is out of"):
            jgather.embedding_bag(index, weight, np.array([0]))
    index = jgather._indexing.as_index("t", "i", np.array(VALUES, np.int64))[0]
    rows, bags = jax.jit(
        lambda i: (jgather.embedding(i, weight), jgather.embedding_bag(i[:, None], weight))
    )(index)
    np.testing.assert_array_equal(rows, np.full((4, 1), np.nan))
    np.testing.assert_array_equal(bags, np.zeros((4, 1)))
