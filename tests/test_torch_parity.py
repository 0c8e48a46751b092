"""jgather against real torch (CPU): values, gradients and errors. Skipped without torch.

Every op and every reduce/include_self combination is compared with torch on random inputs
with duplicate indices, index smaller than input off dim, src larger than index, 0-d tensors
and empty indices, for every dtype both libraries share; amax/amin with NaN and infinities;
integer 'mean' with negative values (torch floors). Gradients are compared with torch
autograd, and every input torch rejects must be rejected by jgather too.

Where jgather documents a deliberate difference from torch, the test says so next to it.
The reference (reference.py) is checked against torch here as well, so the other test
modules, which run without torch, rest on a reference that agrees with torch.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import DTYPES, REDUCES, assert_matches, np_dtype
from reference import gather as ref_gather
from reference import scatter_add as ref_scatter_add
from reference import scatter_reduce as ref_scatter_reduce
from reference import take_along_dim as ref_take_along_dim

import jgather

torch = pytest.importorskip("torch")

_TORCH_DTYPE = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int32": torch.int32,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
    "int64": torch.int64,
    "float64": torch.float64,
}


def to_torch(a):
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(a))  # np.array: a writable copy, 0-d stays 0-d


def from_torch(t):
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(np_dtype("bfloat16"))
    return t.numpy()


def _values(rng, shape, name, lo=-8, hi=8):
    if name == "bool":
        return rng.random(shape) < 0.5
    if name in ("float32", "float16", "bfloat16", "float64"):
        # Non-integer values: sums and means round, so the tolerance table matters.
        return rng.normal(scale=3.0, size=shape).astype(np_dtype(name))
    lo = max(lo, 0) if name == "uint8" else lo
    return rng.integers(lo, hi + 1, size=shape).astype(np_dtype(name))


# Fixed case shapes (few distinct shapes keep compile time low): (input, dim, index, src).
_SHAPES = [
    ((4, 5), 1, (3, 7), (4, 8)),  # index longer than input on dim, smaller off dim; src larger
    ((2, 3, 4), -3, (5, 2, 3), (5, 3, 3)),  # negative dim, many duplicates along dim 0
    ((3, 1, 2, 2), 2, (2, 1, 3, 2), (2, 1, 3, 2)),  # rank 4
    ((), 0, (), ()),  # 0-d
    ((4, 5), 0, (0, 5), (1, 5)),  # empty index
    ((6,), -1, (9,), (9,)),  # 1-D, duplicates certain
]


def _shape_ids(name):
    """Two of the six case shapes per dtype, rotating with the dtype: every shape meets at
    least two dtypes (0-d: float32, int32, bool; empty index: float16, int8), and each test
    compiles a third as much as with all six (compile time dominates these tests)."""
    start = DTYPES.index(name)
    return [(start + offset) % len(_SHAPES) for offset in (0, 3)]


def _case(rng, shape_id, name, lo=-8, hi=8):
    shape, dim, ishape, sshape = _SHAPES[shape_id]
    size = shape[dim] if shape else 1
    x = _values(rng, shape, name, lo, hi)
    index = rng.integers(0, size, size=ishape)  # int64, as torch wants
    src = _values(rng, sshape, name, lo, hi)
    return x, dim, index, src


def _close(got, expected, name):
    """Exact for ints/bool; for floats a tolerance that allows a different summation order."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype, (got, expected)
    if name in ("float32", "float16", "bfloat16"):
        rtol = {"float32": 1e-5, "float16": 5e-3, "bfloat16": 4e-2}[name]
        np.testing.assert_allclose(
            got.astype(np.float64),
            expected.astype(np.float64),
            rtol=rtol,
            atol=rtol * 8,
            equal_nan=True,
        )
    else:
        np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------------------------
# Values.


@pytest.mark.parametrize("name", DTYPES)
def test_gather_family_matches_torch(name):
    rng = np.random.default_rng(1)
    for shape_id in _shape_ids(name):
        x, dim, index, _ = _case(rng, shape_id, name)
        if x.ndim and index.ndim:  # gather needs index <= input off dim: slice it
            limit = tuple(
                index.shape[d] if d == dim % x.ndim else min(index.shape[d], x.shape[d])
                for d in range(x.ndim)
            )
            index = index[tuple(slice(0, n) for n in limit)]
        expected = from_torch(torch.gather(to_torch(x), dim, to_torch(index)))
        _close(jgather.gather(x, dim, index), expected, name)
        _close(ref_gather(x, dim, index), expected, name)
        flat = rng.integers(0, max(x.size, 1), size=(3, 2)) if x.size else np.zeros((0,), np.int64)
        expected = from_torch(torch.take_along_dim(to_torch(x), to_torch(flat)))
        _close(jgather.take_along_dim(x, flat), expected, name)
        if x.ndim:
            sel = index.reshape(-1)[:4]
            expected = from_torch(torch.index_select(to_torch(x), dim, to_torch(sel)))
            _close(jgather.index_select(x, dim, sel), expected, name)


@pytest.mark.parametrize("name", DTYPES)
def test_take_along_dim_broadcasting_matches_torch(name):
    rng = np.random.default_rng(2)
    cases = [((2, 1, 4), (1, 3, 2), 2), ((2, 1, 4), (2, 5, 1), -1), ((3, 4), (1, 6), 1)]
    for shape, ishape, dim in cases:
        x = _values(rng, shape, name)
        index = rng.integers(0, shape[dim], size=ishape)
        expected = from_torch(torch.take_along_dim(to_torch(x), to_torch(index), dim))
        _close(jgather.take_along_dim(x, index, dim), expected, name)
        _close(ref_take_along_dim(x, index, dim), expected, name)


def test_take_along_dim_negative_indices_match_torch():
    """torch wraps negative indices in [-size, 0) when dim is given (torch >= 2.8)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 1, 4)).astype(np.float32)
    index = rng.integers(-4, 4, size=(1, 3, 5))
    expected = from_torch(torch.take_along_dim(to_torch(x), to_torch(index), 2))
    _close(jgather.take_along_dim(x, index, 2), expected, "float32")


@pytest.mark.parametrize("name", DTYPES)
def test_scatter_and_scatter_add_match_torch(name):
    rng = np.random.default_rng(4)
    for shape_id in _shape_ids(name):
        x, dim, index, src = _case(rng, shape_id, name)
        if x.ndim and index.size:  # off dim, index must be no larger than input: slice it
            d0 = dim % x.ndim
            limit = tuple(
                index.shape[d] if d == d0 else min(index.shape[d], x.shape[d])
                for d in range(x.ndim)
            )
            index = index[tuple(slice(0, n) for n in limit)]
        expected = from_torch(torch.scatter_add(to_torch(x), dim, to_torch(index), to_torch(src)))
        _close(jgather.scatter_add(x, dim, index, src), expected, name)
        _close(ref_scatter_add(x, dim, index, src), expected, name)
        for reduce in ("add", "multiply"):
            small = (
                src if reduce == "add" or name == "bool" else np.clip(src, -2, 2).astype(src.dtype)
            )
            with warnings.catch_warnings():  # torch deprecates reduce= with a tensor src
                warnings.simplefilter("ignore")
                expected = torch.scatter(
                    to_torch(x), dim, to_torch(index), to_torch(small), reduce=reduce
                )
            _close(jgather.scatter(x, dim, index, small, reduce=reduce), from_torch(expected), name)
        # Plain scatter: torch's winner among duplicates is unspecified, so compare on unique
        # targets (a permutation along dim) only.
        if x.ndim and index.size:
            perm = np.argsort(rng.random(x.shape), axis=dim % x.ndim)
            n = min(x.shape[dim], index.shape[dim])
            unique = np.take(perm, np.arange(n), axis=dim % x.ndim)
            unique = unique[
                tuple(slice(0, min(a, b)) for a, b in zip(unique.shape, src.shape, strict=True))
            ]
            expected = from_torch(torch.scatter(to_torch(x), dim, to_torch(unique), to_torch(src)))
            _close(jgather.scatter(x, dim, unique, src), expected, name)
        # Python scalar src, cast to input's dtype as torch does.
        value = {"bool": True, "uint8": 3, "int8": -3, "int32": 7}.get(name, 1.5)
        expected = from_torch(torch.scatter(to_torch(x), dim, to_torch(index), value))
        _close(jgather.scatter(x, dim, index, value), expected, name)


@pytest.mark.parametrize("name", DTYPES)
@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_reduce_matches_torch(reduce, name):
    """Every reduce x include_self, on every dtype torch supports for it."""
    if reduce == "mean" and name == "bool":
        pytest.skip("torch has no bool mean (the error parity test checks jgather raises)")
    rng = np.random.default_rng(5)
    lo, hi = (-2, 2) if reduce == "prod" else (-8, 8)
    for shape_id in _shape_ids(name):
        x, dim, index, src = _case(rng, shape_id, name, lo, hi)
        if reduce == "prod" and name in ("float32", "float16", "bfloat16"):
            x, src = np.clip(x, -2, 2), np.clip(src, -2, 2)
        if x.ndim and index.size:
            d0 = dim % x.ndim
            limit = tuple(
                index.shape[d] if d == d0 else min(index.shape[d], x.shape[d])
                for d in range(x.ndim)
            )
            index = index[tuple(slice(0, n) for n in limit)]
        for include_self in (True, False):
            expected = from_torch(
                torch.scatter_reduce(
                    to_torch(x),
                    dim,
                    to_torch(index),
                    to_torch(src),
                    reduce,
                    include_self=include_self,
                )
            )
            got = jgather.scatter_reduce(x, dim, index, src, reduce, include_self=include_self)
            _close(got, expected, name)
            _close(ref_scatter_reduce(x, dim, index, src, reduce, include_self), expected, name)


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_amax_amin_nan_and_inf_match_torch(reduce, include_self):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 5)).astype(np.float32)
    src = rng.normal(size=(3, 6)).astype(np.float32)
    x[0, 1], x[2, 4] = np.nan, np.inf
    src[0, 0], src[1, 2], src[1, 3], src[2, 5] = np.nan, np.inf, -np.inf, np.nan
    index = rng.integers(0, 5, size=(3, 6))
    index[0, 0], index[1, 2:4], index[2, 5] = 1, 0, 3
    expected = from_torch(
        torch.scatter_reduce(
            to_torch(x), 1, to_torch(index), to_torch(src), reduce, include_self=include_self
        )
    )
    got = jgather.scatter_reduce(x, 1, index, src, reduce, include_self=include_self)
    assert_matches(got, expected, exact=True)


def test_integer_mean_with_negative_values_matches_torch():
    rng = np.random.default_rng(7)
    for dtype in (np.int32, np.int8):
        x = rng.integers(-20, 20, size=(4, 6)).astype(dtype)
        src = rng.integers(-20, 20, size=(4, 9)).astype(dtype)
        index = rng.integers(0, 6, size=(4, 9))
        for include_self in (True, False):
            expected = torch.scatter_reduce(
                to_torch(x), 1, to_torch(index), to_torch(src), "mean", include_self=include_self
            ).numpy()
            got = jgather.scatter_reduce(x, 1, index, src, "mean", include_self=include_self)
            assert_matches(got, expected)


def test_x64_int64_inputs_match_torch(x64_on):
    """With x64 on, int64 and float64 data behave as torch's defaults (config restored)."""
    rng = np.random.default_rng(8)
    x = rng.integers(-50, 50, size=(3, 4)).astype(np.int64)
    src = rng.integers(-50, 50, size=(3, 5)).astype(np.int64)
    index = rng.integers(0, 4, size=(3, 5))
    for reduce in REDUCES:
        expected = torch.scatter_reduce(
            to_torch(x), 1, to_torch(index), to_torch(src), reduce
        ).numpy()
        assert_matches(jgather.scatter_reduce(x, 1, index, src, reduce), expected)
    xf = rng.normal(size=(3, 4))
    expected = torch.gather(to_torch(xf), 1, to_torch(index[:, :3] % 4)).numpy()
    assert_matches(jgather.gather(xf, 1, index[:, :3] % 4), expected, exact=True)


# --------------------------------------------------------------------------------------------
# Gradients: torch autograd vs jax.vjp, float32, cotangent w.


def _torch_grads(fn, args, w):
    ts = [to_torch(a).requires_grad_(True) for a in args]
    out = fn(*ts)
    out.backward(to_torch(w))
    return [t.grad.numpy() if t.grad is not None else np.zeros(t.shape, np.float32) for t in ts]


def _jax_grads(fn, args, w):
    out, pullback = jax.vjp(fn, *[jnp.asarray(a) for a in args])
    assert out.shape == w.shape
    return [np.asarray(g) for g in pullback(jnp.asarray(w))]


def _compare_grads(torch_fn, jax_fn, args, out_shape, seed=0):
    w = np.random.default_rng(seed).normal(size=out_shape).astype(np.float32)
    for got, expected in zip(
        _jax_grads(jax_fn, args, w), _torch_grads(torch_fn, args, w), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


RNG = np.random.default_rng(9)
XG = RNG.normal(size=(4, 5)).astype(np.float32)
# src exactly index's shape: torch's backward fails for a src larger than index
# ("ScatterAddBackward0 returned an invalid gradient"); test_ops_autodiff covers that case.
SG = RNG.normal(size=(3, 7)).astype(np.float32)  # distinct from XG and from each other: no ties
IG = RNG.integers(0, 5, size=(3, 7))  # duplicates along dim 1, smaller than XG off dim


def test_gather_family_gradients_match_torch():
    tI = to_torch(IG)
    _compare_grads(
        lambda x: torch.gather(x, 1, tI), lambda x: jgather.gather(x, 1, IG), [XG], IG.shape
    )
    i0 = RNG.integers(0, 4, size=(6, 5))
    _compare_grads(
        lambda x: torch.gather(x, 0, to_torch(i0)),
        lambda x: jgather.gather(x, 0, i0),
        [XG],
        i0.shape,
    )
    b = RNG.integers(0, 5, size=(1, 3))
    _compare_grads(
        lambda x: torch.take_along_dim(x, to_torch(b), 1),
        lambda x: jgather.take_along_dim(x, b, 1),
        [XG],
        (4, 3),
    )
    f = RNG.integers(0, 20, size=(8,))
    _compare_grads(
        lambda x: torch.take_along_dim(x, to_torch(f)),
        lambda x: jgather.take_along_dim(x, f),
        [XG],
        (8,),
    )
    s = np.array([4, 0, 4, 2])
    _compare_grads(
        lambda x: torch.index_select(x, 1, to_torch(s)),
        lambda x: jgather.index_select(x, 1, s),
        [XG],
        (4, 4),
    )


def test_scatter_gradients_match_torch():
    tI = to_torch(IG)
    _compare_grads(
        lambda x, s: torch.scatter_add(x, 1, tI, s),
        lambda x, s: jgather.scatter_add(x, 1, IG, s),
        [XG, SG],
        XG.shape,
    )
    # Unique targets: torch's src gradient for overwritten duplicates differs by design
    # (jgather documents it gives them zero); without duplicates the two agree.
    unique = np.argsort(RNG.random((3, 5)), axis=1)[:, :4]
    _compare_grads(
        lambda x, s: torch.scatter(x, 1, to_torch(unique), s),
        lambda x, s: jgather.scatter(x, 1, unique, s),
        [XG, SG[:, :4]],
        XG.shape,
    )
    # Gradient w.r.t. input with duplicates (overwritten positions get zero in both).
    _compare_grads(
        lambda x: torch.scatter(x, 1, tI, to_torch(SG)),
        lambda x: jgather.scatter(x, 1, IG, SG),
        [XG],
        XG.shape,
    )


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod"])
def test_scatter_reduce_gradients_match_torch(reduce, include_self):
    tI = to_torch(IG)
    if reduce == "prod":  # jgather documents: gradient w.r.t. input only
        _compare_grads(
            lambda x: torch.scatter_reduce(
                x, 1, tI, to_torch(SG), reduce, include_self=include_self
            ),
            lambda x: jgather.scatter_reduce(x, 1, IG, SG, reduce, include_self=include_self),
            [XG],
            XG.shape,
        )
        return
    _compare_grads(
        lambda x, s: torch.scatter_reduce(x, 1, tI, s, reduce, include_self=include_self),
        lambda x, s: jgather.scatter_reduce(x, 1, IG, s, reduce, include_self=include_self),
        [XG, SG],
        XG.shape,
    )


@pytest.mark.parametrize("name", ["complex64", "complex128"])
def test_complex_mean_matches_torch_bit_for_bit(name, x64_on):
    """torch divides a complex sum by its count as complex by complex (count + 0j), which
    c10::complex computes as a multiplication by 1 / count (numpy's division too); dividing
    each part by the count differs in the last bit (8 of 1870 elements in complex128 on the
    shapes of torch's own test_scatter_reduce_mean). Duplicates on every row, special values
    (signed zeros, infinities, NaN) in a few entries."""
    rng = np.random.default_rng(3)
    dtype = np.dtype(name)
    shape, index_shape = (10, 11, 17), (10, 9, 17)
    x = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype) * 5
    src = (rng.normal(size=index_shape) + 1j * rng.normal(size=index_shape)).astype(dtype) * 5
    src.reshape(-1)[:6] = [complex(-0.0, -1.0), complex(np.inf, 1), complex(1, -np.inf), complex(np.nan, 0), complex(-0.0, -0.0), complex(0.0, -0.0)]  # fmt: skip
    index = rng.integers(0, 5, size=index_shape)  # every row: 9 entries into 5 of 11 slots
    for include_self in (True, False):
        want = torch.from_numpy(x).scatter_reduce(
            1, torch.from_numpy(index), torch.from_numpy(src), "mean", include_self=include_self
        )
        got = np.asarray(
            jgather.scatter_reduce(x, 1, index, src, "mean", include_self=include_self)
        )
        assert got.dtype == dtype
        for part in (np.real, np.imag):
            g, w = part(got), part(want.numpy())
            same = (g == w) & (np.signbit(g) == np.signbit(w)) | (np.isnan(g) & np.isnan(w))
            assert same.all(), (include_self, np.flatnonzero(~same)[:8], g[~same][:4], w[~same][:4])


_PROD_I = np.array([0, 0, 1, 1])


def _torch_second_order(x, src, u, v, include_self):
    """d/dx and d/dsrc of sum(u * d/dx sum(out**3)) + sum(v * d/dsrc sum(out**3)), torch."""
    tx = torch.tensor(x, requires_grad=True)
    ts = torch.tensor(src, requires_grad=True)
    out = tx.scatter_reduce(0, torch.tensor(_PROD_I), ts, "prod", include_self=include_self)
    gx, gs = torch.autograd.grad((out**3).sum(), (tx, ts), create_graph=True)
    loss = (gx * torch.tensor(u)).sum() + (gs * torch.tensor(v)).sum()
    return [g.numpy() for g in torch.autograd.grad(loss, (tx, ts))]


@pytest.fixture(scope="module")
def _prod_second_order():
    """The jgather side of _torch_second_order (jax.grad of jax.grad), jitted once per
    include_self."""

    def build(include_self):
        def inner(x, s):
            out = jgather.scatter_reduce(x, 0, _PROD_I, s, "prod", include_self=include_self)
            return jnp.sum(out**3)

        def outer(x, s, u, v):
            gx, gs = jax.grad(inner, (0, 1))(x, s)
            return jnp.sum(gx * u) + jnp.sum(gs * v)

        return jax.jit(jax.grad(outer, (0, 1)))

    return {include_self: build(include_self) for include_self in (True, False)}


def test_prod_second_derivative_matches_torch(_prod_second_order, x64_on):
    """jax.grad of jax.grad through 'prod' w.r.t. src (repeated indices) equals torch's double
    backward. For x = [1, 2, 3], s = [2, 3, 4, 5], i = [0, 0, 1, 1],
    d/ds sum(d/ds sum(y**3)) is torch's [648, 468, 52800, 44160] (by hand:
    9 y^3 / s_k * sum_j 1 / s_j - 3 y^3 / s_k^2 within a position). Then mixed x/src second
    derivatives, also where a position holds one zero (torch rejects double backward with two
    zeros at one position), with and without the input."""
    x, src = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0, 5.0])
    _, got = _prod_second_order[True](x, src, np.zeros(3), np.ones(4))
    np.testing.assert_allclose(got, [648.0, 468.0, 52800.0, 44160.0], rtol=1e-12)
    u, v = np.array([1.0, 1.5, 2.0]), np.array([-1.0, 0.5, 0.25, 1.0])
    points = [(x, src), (np.array([1.0, 0.0, 3.0]), np.array([0.0, 3.0, 4.0, 5.0]))]
    for include_self in (True, False):
        for x, src in points:
            want = _torch_second_order(x, src, u, v, include_self)
            got = _prod_second_order[include_self](x, src, u, v)
            for g, w in zip(got, want, strict=True):
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("reduce", ["amax", "amin"])
def test_amax_amin_tie_gradients(reduce):
    """Ties share the gradient evenly. x = [1, 5], src = [5, 5, 2] (amax; amin negates)
    into index [1, 1, 0], cotangent w = [0.3, 0.9]:

    * include_self=True, as torch: position 1 ties x[1], src[0], src[1] (each w1 / 3);
      position 0 is src[2] (w0), x[0] gets nothing.
    * include_self=False: a documented difference. torch still divides by 3 at position 1,
      counting the excluded x[1] (src.grad = [0.3, 0.3, 0.3], summing to less than w);
      jgather shares w1 among the values that took part: src.grad = [0.45, 0.45, 0.3].
    """
    sign = 1.0 if reduce == "amax" else -1.0
    x = sign * np.array([1.0, 5.0], np.float32)
    src = sign * np.array([5.0, 5.0, 2.0], np.float32)
    index = np.array([1, 1, 0])
    w = np.array([0.3, 0.9], np.float32)

    def both(include_self):
        got = _jax_grads(
            lambda a, s: jgather.scatter_reduce(a, 0, index, s, reduce, include_self=include_self),
            [x, src],
            w,
        )
        expected = _torch_grads(
            lambda a, s: torch.scatter_reduce(
                a, 0, to_torch(index), s, reduce, include_self=include_self
            ),
            [x, src],
            w,
        )
        return got, expected

    (gx, gs), (tx, ts) = both(True)
    np.testing.assert_allclose(gx, tx, rtol=1e-6)
    np.testing.assert_allclose(gs, ts, rtol=1e-6)
    np.testing.assert_allclose(gs, [0.3, 0.3, 0.3], rtol=1e-6)
    (gx, gs), (tx, ts) = both(False)
    np.testing.assert_allclose(gx, [0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(tx, [0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(gs, [0.45, 0.45, 0.3], rtol=1e-6)  # jgather's documented rule
    np.testing.assert_allclose(ts, [0.3, 0.3, 0.3], rtol=1e-6)  # torch's (counts the excluded x)


# --------------------------------------------------------------------------------------------
# Errors: whatever torch rejects, jgather rejects (with ValueError, TypeError or IndexError).
# One documented exception: torch rejects int8/uint8/int16 indices, jgather accepts them as an
# extension (test_gather.py and test_scatter.py check they give the int32 result).

_X = np.arange(6, dtype=np.float32).reshape(3, 2)
_I = np.array([[0], [1], [1]])
_S = np.ones((3, 1), np.float32)

_ERROR_CASES = {
    "gather rank": (lambda t: t.gather(to_torch(_X), 1, to_torch(np.array([0, 1]))), lambda j: j.gather(_X, 1, np.array([0, 1]))),
    "gather off-dim": (lambda t: t.gather(to_torch(_X), 1, to_torch(np.zeros((4, 1), np.int64))), lambda j: j.gather(_X, 1, np.zeros((4, 1), np.int64))),
    "gather float index": (lambda t: t.gather(to_torch(_X), 1, to_torch(_I.astype(np.float32))), lambda j: j.gather(_X, 1, _I.astype(np.float32))),
    "gather dim": (lambda t: t.gather(to_torch(_X), 2, to_torch(_I)), lambda j: j.gather(_X, 2, _I)),
    "gather 0-d dim": (lambda t: t.gather(t.tensor(5.0), 1, t.tensor(0)), lambda j: j.gather(np.float32(5.0), 1, np.array(0))),
    "gather oob": (lambda t: t.gather(to_torch(_X), 1, to_torch(_I + 22)), lambda j: j.gather(_X, 1, _I + 22)),
    "gather negative": (lambda t: t.gather(to_torch(_X), 1, to_torch(-_I - 1)), lambda j: j.gather(_X, 1, -_I - 1)),
    "gather empty dim": (lambda t: t.gather(t.zeros(2, 0), 1, t.zeros(2, 1, dtype=t.long)), lambda j: j.gather(np.zeros((2, 0), np.float32), 1, np.zeros((2, 1), np.int64))),
    "scatter src small": (lambda t: t.scatter(to_torch(_X), 1, to_torch(np.zeros((2, 2), np.int64)), t.ones(1, 2)), lambda j: j.scatter(_X, 1, np.zeros((2, 2), np.int64), np.ones((1, 2), np.float32))),
    "scatter src dtype": (lambda t: t.scatter(to_torch(_X), 1, to_torch(_I), t.ones(3, 1, dtype=t.float64)), lambda j: j.scatter(_X, 1, _I, np.ones((3, 1), np.int32))),
    "scatter reduce name": (lambda t: t.scatter(to_torch(_X), 1, to_torch(_I), to_torch(_S), reduce="sum"), lambda j: j.scatter(_X, 1, _I, _S, reduce="sum")),
    "scatter off-dim": (lambda t: t.scatter(to_torch(_X), 1, to_torch(np.zeros((4, 1), np.int64)), t.ones(4, 3)), lambda j: j.scatter(_X, 1, np.zeros((4, 1), np.int64), np.ones((4, 3), np.float32))),
    "scatter oob": (lambda t: t.scatter(to_torch(_X), 1, to_torch(_I + 1), to_torch(_S)), lambda j: j.scatter(_X, 1, _I + 1, _S)),
    "scatter negative": (lambda t: t.scatter(to_torch(_X), 1, to_torch(-_I - 1), to_torch(_S)), lambda j: j.scatter(_X, 1, -_I - 1, _S)),
    "scatter_add dtype": (lambda t: t.scatter_add(to_torch(_X), 1, to_torch(_I), t.ones(3, 1, dtype=t.int64)), lambda j: j.scatter_add(_X, 1, _I, np.ones((3, 1), np.int32))),
    "scatter_add oob": (lambda t: t.scatter_add(to_torch(_X), 1, to_torch(_I + 5), to_torch(_S)), lambda j: j.scatter_add(_X, 1, _I + 5, _S)),
    "scatter_add float index": (lambda t: t.scatter_add(to_torch(_X), 1, to_torch(_I * 1.0), to_torch(_S)), lambda j: j.scatter_add(_X, 1, _I * 1.0, _S)),
    "scatter_reduce name": (lambda t: t.scatter_reduce(to_torch(_X), 1, to_torch(_I), to_torch(_S), "add"), lambda j: j.scatter_reduce(_X, 1, _I, _S, "add")),
    "scatter_reduce bool mean": (lambda t: t.scatter_reduce(t.zeros(3, 2, dtype=t.bool), 1, to_torch(_I), t.ones(3, 1, dtype=t.bool), "mean"), lambda j: j.scatter_reduce(np.zeros((3, 2), bool), 1, _I, np.ones((3, 1), bool), "mean")),
    "scatter_reduce oob": (lambda t: t.scatter_reduce(to_torch(_X), 1, to_torch(_I + 2), to_torch(_S), "amax"), lambda j: j.scatter_reduce(_X, 1, _I + 2, _S, "amax")),
    "scatter_reduce dim": (lambda t: t.scatter_reduce(to_torch(_X), -3, to_torch(_I), to_torch(_S), "sum"), lambda j: j.scatter_reduce(_X, -3, _I, _S, "sum")),
    "scatter_reduce complex amax": (lambda t: t.scatter_reduce(t.zeros(3, 2, dtype=t.complex64), 1, to_torch(_I), t.ones(3, 1, dtype=t.complex64), "amax"), lambda j: j.scatter_reduce(np.zeros((3, 2), np.complex64), 1, _I, np.ones((3, 1), np.complex64), "amax")),
    "scatter_reduce complex amin": (lambda t: t.scatter_reduce(t.zeros(3, 2, dtype=t.complex128), 1, to_torch(_I), t.ones(3, 1, dtype=t.complex128), "amin", include_self=False), lambda j: j.scatter_reduce(np.zeros((3, 2), np.complex128), 1, _I, np.ones((3, 1), np.complex128), "amin", include_self=False)),
    "take_along_dim rank": (lambda t: t.take_along_dim(to_torch(_X), to_torch(np.array([0, 1])), 1), lambda j: j.take_along_dim(_X, np.array([0, 1]), 1)),
    "take_along_dim float": (lambda t: t.take_along_dim(to_torch(_X), to_torch(_I * 1.0), 1), lambda j: j.take_along_dim(_X, _I * 1.0, 1)),
    "take_along_dim flat oob": (lambda t: t.take_along_dim(to_torch(_X), t.tensor([6])), lambda j: j.take_along_dim(_X, np.array([6]))),
    "take_along_dim flat negative": (lambda t: t.take_along_dim(to_torch(_X), t.tensor([-1])), lambda j: j.take_along_dim(_X, np.array([-1]))),
    "take_along_dim 0-d dim": (lambda t: t.take_along_dim(t.tensor(3.0), t.tensor(0), 0), lambda j: j.take_along_dim(np.float32(3.0), np.array(0), 0)),
    "index_select 2-D": (lambda t: t.index_select(to_torch(_X), 1, to_torch(_I)), lambda j: j.index_select(_X, 1, _I)),
    "index_select float": (lambda t: t.index_select(to_torch(_X), 1, t.tensor([1.0])), lambda j: j.index_select(_X, 1, np.array([1.0]))),
    "index_select oob": (lambda t: t.index_select(to_torch(_X), 0, t.tensor([3])), lambda j: j.index_select(_X, 0, np.array([3]))),
    "index_select negative": (lambda t: t.index_select(to_torch(_X), 0, t.tensor([-1])), lambda j: j.index_select(_X, 0, np.array([-1]))),
    "index_select 0-d two": (lambda t: t.index_select(t.tensor(4.0), 0, t.tensor([0, 0])), lambda j: j.index_select(np.float32(4.0), 0, np.array([0, 0]))),
    "index_select dim": (lambda t: t.index_select(to_torch(_X), -3, t.tensor([0])), lambda j: j.index_select(_X, -3, np.array([0]))),
}  # fmt: skip


@pytest.mark.parametrize("case", list(_ERROR_CASES))
def test_every_torch_error_is_a_jgather_error(case):
    torch_call, jgather_call = _ERROR_CASES[case]
    with pytest.raises((RuntimeError, IndexError, TypeError, ValueError, NotImplementedError)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch_call(torch)
    with pytest.raises((ValueError, TypeError, IndexError)):
        jgather_call(jgather)
