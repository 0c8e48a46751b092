"""Edges where jgather must still agree with torch and torch_scatter: aliases torch accepts,
non-finite values in ``scatter_std``, zero segments under jit, strict dtype promotion."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather
from jgather import segment


@pytest.mark.parametrize(("alias", "name"), [("max", "amax"), ("min", "amin")])
def test_scatter_reduce_accepts_torchs_max_and_min(alias, name):
    """torch's scatter_reduce takes 'max'/'min' for 'amax'/'amin' (ported ToMe code does)."""
    x = jnp.array([0.5, 0.0, 3.0])
    index = jnp.array([0, 0, 2, 1])
    src = jnp.array([1.0, -2.0, 2.0, 4.0])
    for include_self in (True, False):
        got = jgather.scatter_reduce(x, 0, index, src, alias, include_self=include_self)
        want = jgather.scatter_reduce(x, 0, index, src, name, include_self=include_self)
        np.testing.assert_array_equal(got, want)


def test_scatter_reduce_still_rejects_unknown_reductions():
    with pytest.raises(ValueError, match="scatter_reduce: unknown reduce"):
        jgather.scatter_reduce(jnp.zeros(2), 0, jnp.array([0]), jnp.ones(1), "maximum")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_scatter_std_propagates_non_finite_values(bad):
    """torch_scatter (and jnp.std) give NaN for a segment holding NaN or an infinity."""
    got = segment.scatter_std(jnp.array([bad, 1.0, 2.0, 4.0]), jnp.array([0, 0, 1, 1]))
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1], np.std([2.0, 4.0], ddof=1), rtol=1e-6)


def test_scatter_std_of_a_negative_out_is_nan_and_constant_segments_stay_zero():
    got = segment.scatter_std(
        jnp.array([1.0, 3.0, 5.0]), jnp.array([0, 0, 1]), out=jnp.array([-10.0, 0.0])
    )
    assert np.isnan(got[0]) and got[1] == 0.0
    # One-element and constant segments: 0, with a zero (not NaN) gradient.
    grad = jax.grad(lambda s: segment.scatter_std(s, jnp.array([0, 1, 1]), dim_size=2).sum())
    np.testing.assert_array_equal(grad(jnp.array([1.0, 2.0, 2.0])), [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "name",
    [
        "scatter_sum",
        "scatter_mean",
        "scatter_max",
        "scatter_min",
        "scatter_std",
        "scatter_logsumexp",
    ],
)
def test_no_segments_with_a_traced_index(name):
    """dim_size=0: every entry is out of range and dropped, under jit as eagerly."""
    f = getattr(segment, name)
    src, index = jnp.ones((3, 2)), jnp.array([0, 1, 2])
    out = jax.jit(lambda s, i: f(s, i, dim=0, dim_size=0, mode="drop"))(src, index)
    values = out[0] if isinstance(out, tuple) else out
    assert values.shape == (0, 2)


def test_apply_mask_takes_a_bool_mask_under_strict_promotion():
    x = jnp.arange(24.0).reshape(1, 6, 4)
    mask = jnp.array([[False, True, True, False, True, False]])
    with jax.numpy_dtype_promotion("strict"):
        masked = jgather.apply_mask(x, mask, 3)
    np.testing.assert_array_equal(masked.x_masked[0], x[0, [0, 3, 5]])


def test_unsigned_means_floor_in_their_own_signedness_in_both_apis():
    """uint32 [3e9, 1] averages to 1.5e9 (a signed 32-bit sum would read 3e9 as negative)."""
    src = jnp.array([3_000_000_000, 1], jnp.uint32)
    index = jnp.array([0, 0])
    torch_style = jgather.scatter_reduce(
        jnp.zeros(1, jnp.uint32), 0, index, src, "mean", include_self=False
    )
    results = {
        "scatter_reduce": torch_style,
        "segment.scatter_mean": segment.scatter_mean(src, index),
        "segment.segment_mean_coo": segment.segment_mean_coo(src, index),
        "segment.segment_mean_csr": segment.segment_mean_csr(src, jnp.array([0, 2])),
    }
    for name, got in results.items():
        assert got.dtype == jnp.uint32, name
        np.testing.assert_array_equal(got, [1_500_000_000], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
@pytest.mark.parametrize("jit", [False, True])
def test_mean_with_include_self_accumulates_from_the_input_in_index_order(dtype, jit):
    """torch computes ((self + s0) + s1) + s2, then divides; self + (s0 + s1 + s2) differs
    in the last bit on this input."""
    x = np.array([-1.783548355102539], dtype)
    index = np.array([0, 0, 0])
    src = np.array([-5.203549385070801, -20.837947845458984, 1.834273338317871], dtype)
    total = x[0]
    for s in src:
        total = dtype(total + s)
    want = dtype(total / dtype(4))
    assert want != dtype((x[0] + dtype(src[0] + src[1] + src[2])) / dtype(4))
    fn = lambda a, i, s: jgather.scatter_reduce(a, 0, i, s, "mean")
    got = (jax.jit(fn) if jit else fn)(x, index, src)
    assert got.dtype == dtype
    assert got[0] == want


def _others_product(x, index, src, include_self):
    """Re-statement: d out[p] / d f = the product of the other factors reduced into p."""
    gx = np.zeros_like(x) if include_self else np.ones_like(x)
    gs = np.zeros_like(src)
    for p in range(x.shape[0]):
        members = [k for k in range(len(index)) if index[k] == p]
        factors = ([x[p]] if include_self else []) + [src[k] for k in members]
        if not members:
            gx[p] = 1.0
            continue
        if include_self:
            gx[p] = np.prod(factors[1:])
        else:
            gx[p] = 0.0
        for j, k in enumerate(members):
            pos = j + (1 if include_self else 0)
            gs[k] = np.prod(factors[:pos] + factors[pos + 1 :])
    return gx, gs


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("jit", [False, True])
def test_prod_gradients_are_the_product_of_the_other_factors_even_at_zeros(include_self, jit):
    """torch differentiates 'prod' w.r.t. src with repeated indices, finite at zeros."""
    x = np.array([2.0, 0.0, 3.0, -1.5, 5.0], np.float32)
    index = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    src = np.array([3.0, 0.5, 4.0, 2.0, 0.0, 7.0, 0.0, -2.0], np.float32)
    loss = lambda a, s: jgather.scatter_reduce(
        a, 0, index, s, "prod", include_self=include_self
    ).sum()
    grad = jax.grad(loss, (0, 1))
    gx, gs = (jax.jit(grad) if jit else grad)(x, src)
    want_x, want_s = _others_product(x, index, src, include_self)
    np.testing.assert_allclose(gx, want_x, rtol=1e-6)
    np.testing.assert_allclose(gs, want_s, rtol=1e-6)
    assert np.isfinite(gs).all()


def _product_hessian(factors_of, values, weights):
    """Re-statement: the Hessian of sum_p weights[p] * prod(factors of p) over ``values``.

    A product is linear in each factor, so d2 / (df dg) is the product of the factors other
    than f and g (f != g at the same position) and 0 otherwise, zeros included.
    """
    h = np.zeros((len(values), len(values)))
    for p, members in enumerate(factors_of):
        for f in members:
            for g in members:
                if f != g:
                    rest = [values[k] for k in members if k not in (f, g)]
                    h[f, g] += weights[p] * np.prod(rest)
    return h


# Positions 0-5 hold no zero, one zero in the input, one in src, two (one without the
# input), three (two without it); position 4 receives nothing.
_HESSIAN_INDEX = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 5, 5])
_HESSIAN_X = np.array([1.5, 0.0, 3.0, 0.0, -0.5, 0.0])
_HESSIAN_SRC = np.array([2.0, -3.0, 4.0, 5.0, -0.5, 0.0, 1.5, 0.0, 2.5, -1.0, 0.0, 0.0])
_HESSIAN_W = np.array([0.5, -1.25, 2.0, 0.75, 1.5, -0.5])


@pytest.mark.usefixtures("x64_on")
@pytest.mark.parametrize("face", ["scatter_reduce", "scatter_reduce_without_self", "scatter_mul"])
def test_prod_second_derivatives_are_products_of_the_other_factors_even_at_zeros(face):
    """d2 out[p] / (df dg) = the product of the factors but f and g, through the JVP rule
    applied twice (XLA has no derivative of a scatter-multiply with repeated indices): a
    Hessian-vector product (forward over reverse) against the re-stated Hessian."""
    x, src, index, w = _HESSIAN_X, _HESSIAN_SRC, _HESSIAN_INDEX, _HESSIAN_W
    n = len(x)
    include_self = face != "scatter_reduce_without_self"
    # Unknowns: [x..., src...]; position p's factors are x[p] (unless include_self=False;
    # scatter_mul's out= values are factors) and the src reduced into it.
    factors = [
        ([p] if include_self else []) + [n + k for k in np.flatnonzero(index == p)]
        for p in range(n)
    ]
    values = np.concatenate([x, src])
    direction = np.random.default_rng(0).normal(size=len(values))
    want = _product_hessian(factors, values, w) @ direction

    def loss(v):
        if face == "scatter_mul":
            out = segment.scatter_mul(v[n:], index, 0, out=v[:n])
        else:
            out = jgather.scatter_reduce(v[:n], 0, index, v[n:], "prod", include_self=include_self)
        return jnp.sum(out * w)

    hvp = jax.jit(lambda v, u: jax.jvp(jax.grad(loss), (v,), (u,))[1])
    np.testing.assert_allclose(hvp(values, direction), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduce", ["amax", "amin"])
def test_a_nan_extremum_gives_nan_gradients_to_what_was_reduced_into_it(reduce):
    x = jnp.array([1.0, 2.0, 3.0])
    index = jnp.array([0, 0, 1])
    src = jnp.array([jnp.nan, 0.5, 2.0])
    loss = lambda a, s: jgather.scatter_reduce(a, 0, index, s, reduce).sum()
    gx, gs = jax.grad(loss, (0, 1))(x, src)
    assert np.isnan(gx[0]) and np.isnan(gs[0]) and np.isnan(gs[1])
    # Position 1 (ties 2.0 and 2.0) and the untouched position 2 are unaffected.
    np.testing.assert_array_equal(gx[1:], [0.5, 1.0])
    np.testing.assert_array_equal(gs[2], 0.5)


@pytest.mark.parametrize("jit", [False, True])
def test_signed_zero_ties_order_minus_zero_below_plus_zero_whatever_the_order(jit):
    """The documented rule: amax of a -0.0/+0.0 tie is +0.0, amin's -0.0, in any order."""
    fn = lambda x, i, s, r: jgather.scatter_reduce(x, 0, i, s, r)
    run = jax.jit(fn, static_argnums=3) if jit else fn
    for first, second in ((-0.0, 0.0), (0.0, -0.0)):
        x = jnp.array([first])
        src = jnp.array([second, first])
        hi = run(x, jnp.array([0, 0]), src, "amax")
        lo = run(x, jnp.array([0, 0]), src, "amin")
        assert hi[0] == 0 and not np.signbit(hi[0])
        assert lo[0] == 0 and np.signbit(lo[0])


@pytest.mark.parametrize("jit", [False, True])
def test_an_empty_index_of_another_rank_reads_and_writes_nothing(jit):
    """torch skips every shape check for an empty index: a gather returns an empty array of
    the index's shape, a scatter the input unchanged."""
    wrap = jax.jit if jit else (lambda f: f)
    x = jnp.arange(5.0)
    empty = jnp.zeros((2, 0), jnp.int32)
    out = wrap(lambda x, i: jgather.gather(x, 0, i))(x, empty)
    assert out.shape == (2, 0) and out.dtype == x.dtype
    dst = jnp.arange(4.0).reshape(2, 2)
    none = jnp.zeros((0,), jnp.int32)
    src = jnp.ones(3)
    for fn in (
        lambda d, i, s: jgather.scatter_add(d, 0, i, s),
        lambda d, i, s: jgather.scatter(d, 1, i, s),
        lambda d, i, s: jgather.scatter_reduce(d, 0, i, s, "amax", include_self=False),
    ):
        np.testing.assert_array_equal(wrap(fn)(dst, none, src), dst)


def test_an_empty_index_still_needs_a_valid_dim_and_an_integer_dtype():
    with pytest.raises(IndexError, match="gather"):
        jgather.gather(jnp.arange(5.0), 3, jnp.zeros((2, 0), jnp.int32))
    with pytest.raises(TypeError, match="scatter_add"):
        jgather.scatter_add(jnp.zeros((2, 2)), 0, jnp.zeros((0,)), jnp.ones(3))


@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max"])
def test_an_empty_indptr_gives_empty_segments_and_gathers(reduce):
    """torch_scatter: zeros(0, 0, 0, 16) with indptr int64[] gives shape (0, 0, 0, 16)."""
    x = jnp.zeros((0, 0, 0, 16))
    indptr = np.zeros((0,), np.int64)
    out = segment.segment_csr(x, indptr, reduce=reduce)
    assert out.shape == (0, 0, 0, 16)
    jitted = jax.jit(lambda a, p: segment.segment_csr(a, p, reduce=reduce))(x, indptr)
    assert jitted.shape == (0, 0, 0, 16)
    assert jax.grad(lambda a: segment.segment_csr(a, indptr, reduce=reduce).sum())(x).shape == (
        0,
        0,
        0,
        16,
    )
    assert segment.gather_csr(x, indptr).shape == (0, 0, 0, 16)
    # No pointers along a non-empty axis: no segments.
    assert segment.segment_csr(jnp.ones((3, 4)), np.zeros((3, 0), np.int64)).shape == (3, 0)
