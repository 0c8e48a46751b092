"""Every reduction of scatter_reduce over every dtype JAX has, against a wide NumPy reference.

The reference accumulates in float64 (floats, rounded once to the dtype, as jgather's
float32 accumulation of reduced-precision floats does) or in the integer dtype itself
(integers wrap, as in torch); integer means are floored. Values are drawn from small sets
whose sums and products are exact in float32, so most comparisons are exact; means allow
one ulp. One compile per dtype: every reduce, both include_self variants and both grouping paths
(a scratch array for small inputs, a sort for inputs much larger than the index) run in one
jitted call. 64-bit dtypes run with x64 on.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import JAX_DTYPES, REDUCES, np_dtype
from strategies import exact_values

import jgather

SIZES = (4, 40)  # rows <= 4 * M: scratch grouping; rows > 4 * M: sort grouping
M = 6


def _meaningful(name, reduce):
    if name == "bool" and reduce == "mean":
        return False  # TypeError, as torch (tested in test_ops_errors)
    return not (name.startswith("complex") and reduce in ("amax", "amin"))


def _reference(base, keys, values, reduce, include_self):
    dtype = base.dtype
    if dtype == np.bool_:
        op = {"sum": np.logical_or, "amax": np.logical_or}.get(reduce, np.logical_and)
        out = base.copy()
        touched = np.zeros(base.shape, bool)
        for k, v in zip(keys, values, strict=True):
            out[k] = v if (not touched[k] and not include_self) else op(out[k], v)
            touched[k] = True
        return out
    integer = dtype.kind in "iu"
    wide = dtype if integer else (np.complex128 if dtype.kind == "c" else np.float64)
    acc = {k: [] for k in range(base.size)}
    for k, v in zip(keys, values, strict=True):
        acc[int(k)].append(v)
    out = base.astype(wide)
    for k, vs in acc.items():
        if not vs:
            continue
        items = ([base[k]] if include_self else []) + vs
        items = np.array(items, dtype).astype(wide)
        with np.errstate(over="ignore"):
            if reduce == "sum":
                r = np.sum(items, dtype=wide)
            elif reduce == "prod":
                r = np.prod(items, dtype=wide)
            elif reduce == "amax":
                r = items.max()
            elif reduce == "amin":
                r = items.min()
            elif integer:  # torch: floor of the (wrapping) sum over the count
                total = int(np.sum(items, dtype=wide))
                r = total // len(items)
            else:
                r = np.sum(items) / len(items)
        out[k] = r
    if dtype.kind not in "iuc" and dtype.itemsize < 4:  # rounded once from float32
        return out.astype(np.float32).astype(dtype)
    return out.astype(dtype)


_JITTED: dict = {}


def _run(reduces, bases, keys, values, prod_values):
    """Every reduce, both include_self variants, both input sizes: one jitted call (jit then
    compiles once per dtype)."""
    if reduces not in _JITTED:

        def fn(bases, keys, values, prod_values):
            return {
                (reduce, size, inc): jgather.scatter_reduce(
                    b, 0, keys, prod_values if reduce == "prod" else values, reduce,
                    include_self=inc,
                )
                for reduce in reduces
                for size, b in zip(SIZES, bases, strict=True)
                for inc in (True, False)
            }  # fmt: skip

        _JITTED[reduces] = jax.jit(fn)
    return _JITTED[reduces](bases, keys, values, prod_values)


@pytest.mark.parametrize("name", JAX_DTYPES)
@settings(max_examples=20)
@given(data=st.data())
def test_scatter_reduce_every_dtype(name, data):
    dtype = np_dtype(name)
    reduces = tuple(r for r in REDUCES if _meaningful(name, r))

    def draw(n, reduce="sum"):
        return np.array(
            data.draw(st.lists(exact_values(name, reduce), min_size=n, max_size=n)), dtype
        )

    with jax.enable_x64(dtype.itemsize == 8 or name == "complex128"):
        bases = [draw(n) for n in SIZES]
        keys = np.array(data.draw(st.lists(st.integers(0, 3), min_size=M, max_size=M)), np.int32)
        values, prod_values = draw(M), draw(M, "prod")
        out = _run(reduces, bases, keys, values, prod_values)
        for (reduce, size, inc), got in out.items():
            base = bases[SIZES.index(size)]
            src = prod_values if reduce == "prod" else values
            expected = _reference(base, keys, src, reduce, inc)
            got = np.asarray(got)
            msg = f"{name} {reduce} include_self={inc} size={size}"
            assert got.dtype == dtype, msg
            if reduce == "mean" and dtype.kind not in "iub":
                eps = float(jnp.finfo(dtype).eps)
                wide = np.complex128 if dtype.kind == "c" else np.float64
                np.testing.assert_allclose(
                    got.astype(wide), expected.astype(wide), rtol=eps, atol=eps, err_msg=msg
                )
            else:
                np.testing.assert_array_equal(got, expected, err_msg=msg)


@pytest.mark.parametrize(
    "index_dtype", ["int8", "int16", "int32", "uint8", "uint16", "uint32", "int64", "uint64"]
)
def test_every_index_dtype(index_dtype):
    """Narrow and unsigned indices widen before arithmetic: int8 -1 on an axis of 300 is 299
    (not 43 from an int8 overflow); uint values keep their meaning."""
    with jax.enable_x64(index_dtype.endswith("64")):
        x = jnp.arange(300.0)
        idx = np.array([0, 5, 127], index_dtype)
        fns = {
            "gather": lambda x, i: jgather.gather(x, 0, i),
            "take_along_dim": lambda x, i: jgather.take_along_dim(x, i, 0),
            "index_select": lambda x, i: jgather.index_select(x, 0, i),
            "scatter_add": lambda x, i: jgather.scatter_add(x, 0, i, jnp.ones(3, x.dtype)),
        }
        out = jax.jit(lambda x, i: {n: f(x, i) for n, f in fns.items()})(x, jnp.asarray(idx))
        for name in ("gather", "take_along_dim", "index_select"):
            np.testing.assert_array_equal(out[name], [0.0, 5.0, 127.0], err_msg=name)
        added = np.asarray(out["scatter_add"])[[0, 5, 127]]
        np.testing.assert_array_equal(added, [1.0, 6.0, 128.0])
        if index_dtype.startswith("int"):
            wrapped = jgather.take_along_dim(x, jnp.asarray(np.array([-1], index_dtype)), 0)
            np.testing.assert_array_equal(wrapped, [299.0])
            short = jgather.take_along_dim(x[:200], jnp.asarray(np.array([-1], index_dtype)), 0)
            np.testing.assert_array_equal(short, [199.0])


def test_unsigned_mean_stays_unsigned():
    """uint32 1.5e9 twice: the mean is 1.5e9 (a signed cast first gave 3647483648)."""
    src = jnp.array([1_500_000_000, 1_500_000_000], jnp.uint32)
    out = jgather.scatter_reduce(
        jnp.zeros(1, jnp.uint32), 0, jnp.zeros(2, jnp.int32), src, "mean", include_self=False
    )
    np.testing.assert_array_equal(out, np.array([1_500_000_000], np.uint32))
    with jax.enable_x64(True):
        big = np.array([2**63, 2**63 + 2], np.uint64)
        out = jgather.scatter_reduce(
            jnp.zeros(1, jnp.uint64), 0, jnp.zeros(2, jnp.int32), big, "mean", include_self=False
        )
        # the uint64 sum wraps (as torch's does): (2**64 + 2) mod 2**64 = 2, floored over 2
        np.testing.assert_array_equal(out, np.array([1], np.uint64))


# jgather.segment's reductions share the engine's dtype rules: the same table, with its
# semantics (out= takes part as torch_scatter's does; mean divides by the count of src only).
_SEGMENT = {"sum": "sum", "mul": "prod", "max": "amax", "min": "amin", "mean": "mean"}
_SEGMENT_JITTED: dict = {}


def _segment_reference(base, keys, values, reduce):
    if reduce != "mean":
        return _reference(base, keys, values, _SEGMENT[reduce], True)
    dtype = base.dtype
    integer = dtype.kind in "iu"
    wide = dtype if integer else (np.complex128 if dtype.kind == "c" else np.float64)
    total = base.astype(wide)
    count = np.zeros(base.shape, np.int64)
    with np.errstate(over="ignore"):
        for k, v in zip(keys, values, strict=True):
            total[k] = total[k] + np.array(v, dtype).astype(wide)
            count[k] += 1
    if integer:
        out = np.array([int(t) // max(int(c), 1) for t, c in zip(total, count, strict=True)])
        return out.astype(dtype)
    out = total / np.maximum(count, 1)
    if dtype.kind not in "c" and dtype.itemsize < 4:
        return out.astype(np.float32).astype(dtype)
    return out.astype(dtype)


@pytest.mark.parametrize("name", [n for n in JAX_DTYPES if n != "bool"])
@settings(max_examples=10)
@given(data=st.data())
def test_segment_scatter_every_dtype(name, data):
    dtype = np_dtype(name)
    reduces = tuple(r for r in _SEGMENT if not (name.startswith("complex") and r in ("max", "min")))

    def draw(n, reduce="sum"):
        return np.array(
            data.draw(st.lists(exact_values(name, reduce), min_size=n, max_size=n)), dtype
        )

    with jax.enable_x64(dtype.itemsize == 8 or name == "complex128"):
        base = draw(SIZES[0])
        keys = np.array(data.draw(st.lists(st.integers(0, 3), min_size=M, max_size=M)), np.int32)
        values, prod_values = draw(M), draw(M, "prod")
        if reduces not in _SEGMENT_JITTED:

            def fn(base, keys, values, prod_values):
                return {
                    r: jgather.segment.scatter(
                        prod_values if r == "mul" else values, keys, 0, out=base, reduce=r
                    )
                    for r in reduces
                }

            _SEGMENT_JITTED[reduces] = jax.jit(fn)
        out = _SEGMENT_JITTED[reduces](base, keys, values, prod_values)
        for reduce, got in out.items():
            src = prod_values if reduce == "mul" else values
            expected = _segment_reference(base, keys, src, reduce)
            got = np.asarray(got)
            msg = f"segment {name} {reduce}"
            assert got.dtype == dtype, msg
            if reduce == "mean" and dtype.kind not in "iu":
                eps = float(jnp.finfo(dtype).eps)
                wide = np.complex128 if dtype.kind == "c" else np.float64
                np.testing.assert_allclose(
                    got.astype(wide), expected.astype(wide), rtol=eps, atol=eps, err_msg=msg
                )
            else:
                np.testing.assert_array_equal(got, expected, err_msg=msg)
