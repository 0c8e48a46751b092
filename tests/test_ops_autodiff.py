"""Autodiff through every op: numerical checks (check_grads) and exact hand-derived gradients.

check_grads compares jax.jvp (mode 'fwd') and jax.vjp (mode 'rev') with finite differences,
order 2 for gather, scatter_add and 'prod' (w.r.t. input and src; every other op here is linear or piecewise linear
in its float arguments, so order 1 says it all). It runs in float64 (conftest's x64_on fixture) so the finite differences are
tight; the global config is restored afterwards.

The exact tests state the gradient in closed form, written from the op's formula with plain
loops (reference.py): gather's gradient is a scatter-add of the cotangent, so duplicate
indices accumulate; scatter_add passes the cotangent to input and gathers it for src; and so on.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from reference import gather as ref_gather
from reference import index_select as ref_index_select
from reference import scatter_add as ref_scatter_add
from reference import scatter_targets

import jgather
from jgather import segment

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 4))  # [3, 4], float64 (used inside enable_x64)
IDX = np.array([[0, 2, 2], [3, 3, 1], [1, 0, 1]])  # [3, 3] along dim 1, duplicates per row
UNIQUE = np.array([[0, 2, 3], [3, 1, 0], [1, 0, 2]])  # [3, 3] along dim 1, no duplicates
SRC = RNG.normal(size=(3, 3))
W = RNG.normal(size=(3, 4))  # a cotangent with the input's shape


def _check(f, args, order=1, modes=("fwd", "rev")):
    """jvp and vjp of jit(f) against finite differences (jit keeps the compile count low)."""
    check_grads(jax.jit(f), args, order=order, modes=modes, atol=1e-5, rtol=1e-5, eps=1e-4)


@pytest.mark.usefixtures("x64_on")
def test_check_grads_gather_family():
    idx = jnp.asarray(IDX)
    _check(lambda x: jgather.gather(x, 1, idx), (jnp.asarray(X),), order=2)
    _check(lambda x: jgather.gather(x, -2, jnp.array([[2, 0, 0, 1]])), (jnp.asarray(X),))
    _check(lambda x: jgather.take_along_dim(x, idx, 1), (jnp.asarray(X),))
    _check(lambda x: jgather.take_along_dim(x, jnp.array([[1, 1]]), 1), (jnp.asarray(X),))
    _check(lambda x: jgather.take_along_dim(x, jnp.array([11, 0, 11])), (jnp.asarray(X),))
    _check(lambda x: jgather.index_select(x, 1, jnp.array([3, 0, 3])), (jnp.asarray(X),))


@pytest.mark.usefixtures("x64_on")
def test_check_grads_scatter_add_and_scatter():
    x, src = jnp.asarray(X), jnp.asarray(SRC)
    idx, unique = jnp.asarray(IDX), jnp.asarray(UNIQUE)
    _check(lambda a, s: jgather.scatter_add(a, 1, idx, s), (x, src), order=2)
    # src larger than index: the unread part of src gets a zero gradient (checked exactly below).
    _check(lambda a, s: jgather.scatter_add(a, 0, idx[:2, :3] % 3, s), (x, jnp.asarray(X)))
    _check(lambda a, s: jgather.scatter(a, 1, unique, s), (x, src))
    _check(lambda a, s: jgather.scatter(a, 1, idx, s), (x, src))  # duplicates: last one wins
    _check(lambda a: jgather.scatter(a, 1, idx, 2.5), (x,))
    _check(lambda a: jgather.scatter(a, 1, idx, 1.5, reduce="multiply"), (x,))
    _check(lambda a, s: jgather.scatter(a, 1, idx, s, reduce="add"), (x, src))


@pytest.mark.usefixtures("x64_on")
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
def test_check_grads_scatter_reduce(reduce, include_self):
    # Distinct values (no ties) keep amax/amin differentiable at the point; spread of 0.1+.
    x = jnp.asarray(np.arange(12.0).reshape(3, 4) * 0.37 - 2.0)
    src = jnp.asarray(np.array([[0.15, 3.1, -1.3], [2.2, -0.45, 5.0], [1.05, -3.3, 0.6]]))
    idx = jnp.asarray(IDX)
    f = lambda a, s: jgather.scatter_reduce(a, 1, idx, s, reduce, include_self=include_self)
    _check(f, (x, src))


@pytest.mark.usefixtures("x64_on")
@pytest.mark.parametrize("include_self", [True, False])
def test_check_grads_scatter_reduce_prod_wrt_input(include_self):
    """'prod' is smooth in input: second order too."""
    x = jnp.asarray(X)
    src = jnp.asarray(SRC)
    idx = jnp.asarray(IDX)
    _check(
        lambda a: jgather.scatter_reduce(a, 1, idx, src, "prod", include_self=include_self),
        (x,),
        order=2,
    )


@pytest.mark.usefixtures("x64_on")
@pytest.mark.parametrize("include_self", [True, False])
def test_check_grads_scatter_reduce_prod_wrt_input_and_src(include_self):
    """Second order in both arguments, with duplicate indices: the src tangent is jgather's
    own product-of-the-others rule (XLA has none for repeated indices), and that rule is
    differentiable in turn. Order 2 runs forward over forward (reverse over reverse costs
    twice the compiles; test_torch_parity.py compares jax.grad of jax.grad with torch);
    torch_scatter's scatter_mul into out= uses the same rule. No zero factors here:
    test_edge_cases.py checks the second derivatives at zeros."""
    idx = jnp.asarray(IDX)
    args = (jnp.asarray(X), jnp.asarray(SRC))
    f = lambda a, s: jgather.scatter_reduce(a, 1, idx, s, "prod", include_self=include_self)
    _check(f, args, order=2, modes=("fwd",))
    _check(f, args, modes=("rev",))
    if include_self:
        _check(lambda a, s: segment.scatter_mul(s, idx, 1, out=a), args, order=2, modes=("fwd",))


# --------------------------------------------------------------------------------------------
# Exact gradients.


def _vjp(f, *args):
    """Cotangent W pulled back through f (W sliced to f's output shape)."""
    out, pullback = jax.vjp(f, *args)
    w = jnp.asarray(W[tuple(slice(0, n) for n in out.shape)], out.dtype)
    return [np.asarray(g) for g in pullback(w)], np.asarray(w)


def test_gather_gradient_is_scatter_add_of_cotangent():
    """d/dx sum(w * gather(x, 1, idx)) = scatter_add(zeros, 1, idx, w): duplicates accumulate."""
    x = jnp.asarray(X, jnp.float32)
    (g,), w = _vjp(lambda a: jgather.gather(a, 1, jnp.asarray(IDX)), x)
    expected = ref_scatter_add(np.zeros((3, 4), np.float32), 1, IDX, w)
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    # Row 0 reads column 2 twice: its gradient is the sum of both cotangents; column 1 none.
    np.testing.assert_allclose(g[0], [w[0, 0], 0.0, w[0, 1] + w[0, 2], 0.0], rtol=1e-6)
    # The same under jit and vmap.
    g_jit = jax.jit(jax.grad(lambda a: jnp.sum(jgather.gather(a, 1, jnp.asarray(IDX)) * w)))(x)
    np.testing.assert_allclose(g_jit, expected, rtol=1e-6)
    per_row = jax.vmap(jax.grad(lambda r, i, c: jnp.sum(jgather.gather(r, 0, i) * c)))(
        x, jnp.asarray(IDX), jnp.asarray(w)
    )
    np.testing.assert_allclose(per_row, expected, rtol=1e-6)


def test_take_along_dim_and_index_select_gradients():
    x = jnp.asarray(X, jnp.float32)
    # Broadcast index [1, 2] along dim 1: every row reads columns 3 and 3.
    (g,), w = _vjp(lambda a: jgather.take_along_dim(a, jnp.array([[3, 3]]), 1), x)
    expected = np.zeros((3, 4), np.float32)
    expected[:, 3] = w[:, 0] + w[:, 1]
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    # Broadcast input [1, 4] against index [3, 2]: the single row collects all three rows.
    (g,), w = _vjp(
        lambda a: jgather.take_along_dim(a, jnp.array([[0, 1], [1, 1], [3, 0]]), 1), x[:1]
    )
    expected = np.zeros((1, 4), np.float32)
    for r, cols in enumerate([[0, 1], [1, 1], [3, 0]]):
        for c, col in enumerate(cols):
            expected[0, col] += w[r, c]
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    (g,), w = _vjp(lambda a: jgather.index_select(a, 1, jnp.array([3, 0, 3])), x)
    expected = ref_scatter_add(np.zeros((3, 4), np.float32), 1, np.tile([[3, 0, 3]], (3, 1)), w)
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    np.testing.assert_allclose(ref_index_select(w, 1, np.array([0, 1])), w[:, :2])


def test_scatter_add_gradients():
    """d/dinput = w; d/dsrc = gather(w, dim, index) on index's extent, zero beyond it."""
    x = jnp.asarray(X, jnp.float32)
    src = jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32)  # larger than the [2, 3] index
    idx = IDX[:2]
    (gx, gs), w = _vjp(lambda a, s: jgather.scatter_add(a, 1, jnp.asarray(idx), s), x, src)
    np.testing.assert_allclose(gx, w, rtol=1e-6)
    expected = np.zeros((3, 4), np.float32)
    expected[:2, :3] = ref_gather(w, 1, idx)
    np.testing.assert_allclose(gs, expected, rtol=1e-6)


def test_scatter_gradients_follow_the_last_writer():
    """Documented: input gets w where nothing was written; src gets w at its target only if it
    was the last writer along dim (an overwritten duplicate had no effect, so zero)."""
    x = jnp.asarray(X, jnp.float32)
    src = jnp.asarray(SRC, jnp.float32)
    (gx, gs), w = _vjp(lambda a, s: jgather.scatter(a, 1, jnp.asarray(IDX), s), x, src)
    targets = scatter_targets((3, 4), 1, IDX)
    expected_x = w.copy()
    expected_s = np.zeros((3, 3), np.float32)
    for dst, writers in targets.items():
        expected_x[dst] = 0.0
        expected_s[writers[-1]] = w[dst]
    np.testing.assert_allclose(gx, expected_x, rtol=1e-6)
    np.testing.assert_allclose(gs, expected_s, rtol=1e-6)


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_mean_gradients(include_self):
    """d/dsrc = w[target] / count[target]; d/dinput = w / count (include_self), else w where
    untouched and 0 where touched."""
    x = jnp.asarray(X, jnp.float32)
    src = jnp.asarray(SRC, jnp.float32)
    f = lambda a, s: jgather.scatter_reduce(
        a, 1, jnp.asarray(IDX), s, "mean", include_self=include_self
    )
    (gx, gs), w = _vjp(f, x, src)
    targets = scatter_targets((3, 4), 1, IDX)
    expected_x = w.copy()
    expected_s = np.zeros((3, 3), np.float32)
    for dst, writers in targets.items():
        count = len(writers) + int(include_self)
        expected_x[dst] = w[dst] / count if include_self else 0.0
        for pos in writers:
            expected_s[pos] = w[dst] / count
    np.testing.assert_allclose(gx, expected_x, rtol=1e-6)
    np.testing.assert_allclose(gs, expected_s, rtol=1e-6)


def test_scatter_reduce_amax_gradient_splits_ties_evenly():
    """torch's rule: the cotangent is shared evenly by every value equal to the result.

    x = [1, 5], src = [5, 5, 2], index = [1, 1, 0]: position 1 ties x[1], src[0], src[1] (each
    gets w1 / 3); position 0 is src[2] = 2 > x[0] (src[2] gets w0, x[0] nothing).
    """
    x = jnp.array([1.0, 5.0])
    src = jnp.array([5.0, 5.0, 2.0])
    index = jnp.array([1, 1, 0])
    w = jnp.array([0.3, 0.9])
    out, pullback = jax.vjp(lambda a, s: jgather.scatter_reduce(a, 0, index, s, "amax"), x, src)
    np.testing.assert_array_equal(out, [2.0, 5.0])
    gx, gs = pullback(w)
    np.testing.assert_allclose(gx, [0.0, 0.3], rtol=1e-6)
    np.testing.assert_allclose(gs, [0.3, 0.3, 0.3], rtol=1e-6)
    # Without self, only the two src values tie at position 1 (jgather's documented rule).
    _, pullback = jax.vjp(
        lambda a, s: jgather.scatter_reduce(a, 0, index, s, "amax", include_self=False), x, src
    )
    gx, gs = pullback(w)
    np.testing.assert_allclose(gx, [0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(gs, [0.45, 0.45, 0.3], rtol=1e-6)


def test_jvp_of_gather_is_gather_of_tangent():
    x = jnp.asarray(X, jnp.float32)
    t = jnp.asarray(W, jnp.float32)
    out, tangent = jax.jvp(lambda a: jgather.gather(a, 1, jnp.asarray(IDX)), (x,), (t,))
    np.testing.assert_allclose(tangent, ref_gather(np.asarray(t), 1, IDX), rtol=1e-6)
    np.testing.assert_allclose(out, ref_gather(np.asarray(x), 1, IDX), rtol=1e-6)
