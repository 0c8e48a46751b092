"""checkify with index_checks reports out-of-range index values of every op and of
jgather.segment's index-taking functions: traced plainly,
under jax.jit, under jax.vmap and nested vmap, with the caller's value -- and stays quiet for
an in-range index.

jax 0.10's checkify rule for scatters with batching dimensions (what vmap's scatter rule
produces) fails with ``IndexError: tuple index out of range``; jgather batches its scatters by
folding the batch axis instead (see ``_engine.batchable``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jgather
from jgather import segment

# Per-example operands: x [4], index [3]; the bad index holds 9 (axis size 4).
X = jnp.arange(8.0).reshape(2, 4)
GOOD = jnp.array([[0, 3, 3], [1, 0, 2]])
BAD = jnp.array([[0, 3, 3], [1, 9, 2]])
SRC = jnp.ones(3)

OPS = {
    "gather": lambda x, i: jgather.gather(x, 0, i),
    "take_along_dim": lambda x, i: jgather.take_along_dim(x, i, 0),
    "index_select": lambda x, i: jgather.index_select(x, 0, i),
    "scatter": lambda x, i: jgather.scatter(x, 0, i, SRC),
    "scatter_scalar": lambda x, i: jgather.scatter(x, 0, i, 2.0),
    "scatter_add": lambda x, i: jgather.scatter_add(x, 0, i, SRC),
    "scatter_reduce_mean": lambda x, i: jgather.scatter_reduce(x, 0, i, SRC, "mean"),
    "scatter_reduce_amax": lambda x, i: jgather.scatter_reduce(
        x, 0, i, SRC, "amax", include_self=False
    ),
    "index_add": lambda x, i: jgather.index_add(x, 0, i, SRC),
    "index_copy": lambda x, i: jgather.index_copy(x, 0, i, SRC),
    "index_fill": lambda x, i: jgather.index_fill(x, 0, i, 2.0),
    "index_reduce_prod": lambda x, i: jgather.index_reduce(x, 0, i, SRC, "prod"),
    "index_put": lambda x, i: jgather.index_put(x, (i,), SRC),
    "index_put_accumulate": lambda x, i: jgather.index_put(x, (i,), SRC, True),
    "take": lambda x, i: jgather.take(x, i),
    "put": lambda x, i: jgather.put(x, i, SRC, True),
    "embedding": lambda x, i: jgather.embedding(i, x[:, None]),
    "embedding_bag": lambda x, i: jgather.embedding_bag(i, x[:, None], jnp.array([0, 2])),
    # jgather.segment shares the probe: the same report, the caller's value and axis size.
    "segment.scatter_sum": lambda x, i: segment.scatter_sum(SRC, i, 0, out=x),
    "segment.scatter_max": lambda x, i: segment.scatter_max(SRC, i, 0, out=x)[0],
    "segment.scatter_softmax": lambda x, i: segment.scatter_softmax(SRC + x[:3], i, 0, dim_size=4),
    "segment.segment_coo": lambda x, i: segment.segment_coo(SRC, jnp.sort(i), out=x),
    "segment.gather_coo": lambda x, i: segment.gather_coo(x, i),
}


def _variants(fn):
    return {
        # A traced (not concrete) index, so the op cannot raise eagerly and checkify reports.
        "plain": lambda x, i: fn(x[1], i[1] + 0),
        "jit": jax.jit(lambda x, i: fn(x[1], i[1])),
        "vmap": jax.vmap(fn),
        "vmap_of_vmap": lambda x, i: jax.vmap(jax.vmap(fn, (None, 0)), (0, 0))(x, i[:, None]),
        "jit_of_vmap": jax.jit(jax.vmap(fn)),
    }


@pytest.mark.parametrize("name", OPS)
def test_checkify_reports_the_callers_value(name):
    for variant, fn in _variants(OPS[name]).items():
        checked = checkify.checkify(fn, errors=checkify.index_checks)
        err, _ = checked(X, BAD)
        msg = err.get()
        assert msg is not None, (name, variant)
        assert "index 9 is out of bounds" in msg and "size 4" in msg, (name, variant, msg)
        err, _ = checked(X, GOOD)
        assert err.get() is None, (name, variant, err.get())


def test_checkify_values_equal_unchecked():
    for name, op in OPS.items():
        fn = jax.vmap(op)
        _, out = checkify.checkify(fn, errors=checkify.index_checks)(X, GOOD)
        np.testing.assert_array_equal(out, fn(X, GOOD), err_msg=name)


def test_take_along_dim_reports_the_negative_value_as_given():
    """-6 on size 5 is reported as -6 (not as the wrapped -1); -5 wraps and is in range."""
    fn = jax.jit(lambda x, i: jgather.take_along_dim(x, i, 0))
    checked = checkify.checkify(fn, errors=checkify.index_checks)
    err, _ = checked(jnp.arange(5.0), jnp.array([-5, -6]))
    assert "index -6 is out of bounds" in err.get(), err.get()
    err, out = checked(jnp.arange(5.0), jnp.array([-5, -1]))
    assert err.get() is None
    np.testing.assert_array_equal(out, [0.0, 4.0])


def test_gradients_through_vmapped_scatters():
    """The folded batching keeps jax.grad working, grad of vmap and vmap of grad alike."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((3, 4, 5)), jnp.float32)
    s = jnp.asarray(rng.standard_normal((3, 2, 5)), jnp.float32)
    i = jnp.asarray(rng.integers(0, 4, (3, 2, 5)), jnp.int32)
    f = lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "mean")
    loss = lambda x, s: (jax.vmap(f)(x, i, s) ** 2).sum()
    per_example = lambda x, i, s: (f(x, i, s) ** 2).sum()
    g1 = jax.grad(loss, argnums=(0, 1))(x, s)
    g2 = jax.vmap(jax.grad(per_example, argnums=(0, 2)))(x, i, s)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_masked_scatter_reports_the_first_position_beyond_the_source():
    """masked_scatter's k-th True position reads source[k]; with a source of 2 elements the
    third True position (rank 2) is reported against size 2, in every variant."""
    fn = lambda x, i: jgather.masked_scatter(x, i > 0, jnp.ones(2))
    x = jnp.zeros((2, 4))
    bad = jnp.array([[1, 1, 0, 0], [1, 0, 1, 1]])  # example 1: three True positions
    good = jnp.array([[1, 1, 0, 0], [0, 1, 0, 1]])
    for variant, f in _variants(fn).items():
        checked = checkify.checkify(f, errors=checkify.index_checks)
        err, _ = checked(x, bad)
        msg = err.get()
        assert msg is not None and "index 2 is out of bounds" in msg and "size 2" in msg, (
            variant,
            msg,
        )
        err, _ = checked(x, good)
        assert err.get() is None, (variant, err.get())
