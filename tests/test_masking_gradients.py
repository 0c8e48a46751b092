"""Gradients of the permutation gathers: gathers by the inverse, bit for bit the scatter-add's.

Every masking function gathers by a permutation (or part of one) that it produced itself, and
its gradient now gathers the cotangent by the inverse permutation (tests/test_accelerator_
programs.py asserts that no scatter of values is left). Here the gradients, forward-mode
tangents and ``jax.vmap``-ed gradients are compared, bit for bit, with those of the same
gather written with JAX's own transpose (a scatter-add: ``jgather.index_select`` without an
inverse, or ``jnp.take_along_axis``), which is what these functions computed before. Also
here: the ``unique_indices`` / ``inverse`` options of the gathers, their eager checks, and
``apply_masks``' layouts.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pipelines import users_compile

import jgather

N, L, D = 3, 12, 4
RNG = np.random.default_rng(0)
X = RNG.standard_normal((N, L, D)).astype(np.float32)
KEY = jax.random.key(3)


def bits(a):
    a = np.asarray(a)
    return a.view(np.dtype(f"uint{a.dtype.itemsize * 8}"))


def assert_bits_equal(got, want):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_array_equal(bits(g), bits(w))


def rows_gather(x, rows):
    """The plain gather (JAX's scatter-add transpose) of ``rows`` [N, K] of ``x`` [N, L, D]."""
    return jax.vmap(lambda xi, r: jgather.index_select(xi, 0, r, mode="promise_in_bounds"))(x, rows)


def kept_rows(out, num_prefix):
    """The rows ``random_masking`` / ``apply_mask`` gathered, from its own ``ids_restore``."""
    perm = jnp.argsort(out.ids_restore, axis=1, stable=True)[:, : out.len_keep]
    prefix = jnp.broadcast_to(jnp.arange(num_prefix), (N, num_prefix))
    return jnp.concatenate([prefix, perm + num_prefix], axis=1).astype(jnp.int32)


def old_unshuffle(x_masked, ids, token, num_prefix):
    """``unshuffle`` as written before: a clamped gather, then the mask token."""
    len_keep = x_masked.shape[1] - num_prefix

    def one(x, r):
        kept = x[num_prefix:]
        rows = jgather.index_select(kept, 0, jnp.minimum(r, len_keep - 1), mode="promise_in_bounds")
        body = jnp.where((r >= len_keep)[:, None], token, rows)
        return jnp.concatenate([x[:num_prefix], body]) if num_prefix else body

    return jax.vmap(one)(x_masked, ids)


# name -> (new function, old function); each of x (and, for unshuffle, the mask token).
def _masking_cases():
    noise = RNG.random((N, L), dtype=np.float32)
    removed = np.stack([RNG.permutation(L) < 8 for _ in range(N)])
    out = jgather.random_masking(KEY, X, 0.75)
    per = jgather.random_masking_per_sample(
        KEY, X, np.array([0.5, 0.75, 0.25], np.float32), capacity=9
    )
    dropped = {o: jgather.patch_dropout(KEY, X, 0.5, ordered=o) for o in (False, True)}
    cases = {}
    for p in (0, 1):
        cases[f"random_masking P={p}"] = (
            lambda x, p=p: jgather.random_masking(KEY, x, 0.75, num_prefix=p).x_masked,
            lambda x, p=p: rows_gather(
                x, kept_rows(jgather.random_masking(KEY, x, 0.75, num_prefix=p), p)
            ),
        )
    cases["random_masking noise"] = (
        lambda x: jgather.random_masking(None, x, 0.5, noise=noise).x_masked,
        lambda x: rows_gather(x, kept_rows(jgather.random_masking(None, x, 0.5, noise=noise), 0)),
    )
    cases["apply_mask P=1"] = (
        lambda x: jgather.apply_mask(x, removed[:, 1:], 4, num_prefix=1).x_masked,
        lambda x: rows_gather(
            x, kept_rows(jgather.apply_mask(x, removed[:, 1:], 4, num_prefix=1), 1)
        ),
    )
    for p in (0, 1):
        xm = np.asarray(out.x_masked)
        if p:
            xm = np.concatenate([X[:, :1], xm], axis=1)
        cases[f"unshuffle P={p}"] = (
            lambda x, t, xm=xm, p=p: jgather.unshuffle(
                x[:, : xm.shape[1]] + xm, out, t, num_prefix=p
            ),
            lambda x, t, xm=xm, p=p: old_unshuffle(x[:, : xm.shape[1]] + xm, out.ids_restore, t, p),
        )
    cases["unshuffle per-sample capacity"] = (
        lambda x, t: jgather.unshuffle(x[:, :9] + per.x_masked, per, t),
        lambda x, t: old_unshuffle(x[:, :9] + per.x_masked, per.ids_restore, t, 0),
    )
    cases["take_masked"] = (
        lambda x: jgather.take_masked(x, out),
        lambda x: rows_gather(x, jgather.masked_ids(out)),
    )
    for o, dropped_o in dropped.items():
        cases[f"patch_dropout ordered={o}"] = (
            lambda x, o=o: jgather.patch_dropout(KEY, x, 0.5, ordered=o).tokens,
            lambda x, d=dropped_o: rows_gather(x, d.indices),
        )
    return cases


MASKING = _masking_cases()
TOKEN = RNG.standard_normal(D).astype(np.float32)


def _args(name):
    return (X, TOKEN) if name.startswith("unshuffle") else (X,)


def _cotangent(fn, args, seed=1):
    shape = jax.eval_shape(fn, *args)
    return np.random.default_rng(seed).standard_normal(shape.shape).astype(shape.dtype)


@pytest.mark.parametrize("name", sorted(MASKING))
def test_masking_gradients_tangents_and_vmap_are_the_scatter_adds_bit_for_bit(name):
    new, old = MASKING[name]
    args = _args(name)
    ct = _cotangent(new, args)

    @jax.jit
    def both(*args):
        outs = []
        for fn in (new, old):
            y, vjp = jax.vjp(fn, *args)
            _, tangent = jax.jvp(fn, args, tuple(a * 0.5 + 1 for a in args))
            # vmap of the gradient: two cotangents at once (the second one halved)
            grads = jax.vmap(vjp)(jnp.stack([ct, ct * 0.5]))
            outs.append((y, vjp(ct), tangent, grads))
        return outs

    got, want = both(*args)
    assert_bits_equal(got, want)


def test_bfloat16_gradients_are_the_float32_accumulated_ones():
    new, old = MASKING["random_masking P=1"]
    x = X.astype(jnp.bfloat16)
    ct = _cotangent(new, (x,))
    grads = [jax.jit(jax.vjp(fn, x)[1])(ct) for fn in (new, old)]
    assert_bits_equal(*grads)


# ----------------------------------------------------------------------------------------------
# apply_masks / unapply_masks.

M, K = 3, 5
SETS = np.stack([[RNG.permutation(L)[:K] for _ in range(N)] for _ in range(M)]).astype(np.int32)


def old_apply_masks(x, ids):
    """``apply_masks`` as written before: one gather for every set and sample."""
    take = lambda xi, i: jgather.index_select(xi, 0, i)
    out = jax.vmap(jax.vmap(take), in_axes=(None, 0))(x, ids)
    return out.reshape(-1, *out.shape[2:])


def old_unapply_masks(y, ids, valid):
    rows = ids.reshape(-1, ids.shape[2])
    rows = jnp.where(valid.reshape(rows.shape), rows, L)

    def put(yi, i):
        index = jnp.broadcast_to(i[:, None], yi.shape)
        return jgather.scatter(jnp.zeros((L, D), yi.dtype), 0, index, yi, mode="drop")

    return jax.vmap(put)(y, rows)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_apply_masks_unique_indices_gradient_is_the_scatter_adds(dtype):
    x = X.astype(dtype)
    new = lambda x: jgather.apply_masks(
        x, SETS.transpose(1, 0, 2), layout="NMK", unique_indices=True
    )
    old = lambda x: old_apply_masks(x, SETS)
    ct = _cotangent(old, (x,))

    @jax.jit
    def both(x):
        return [(fn(x), jax.vjp(fn, x)[1](ct), jax.jvp(fn, (x,), (x,))[1]) for fn in (new, old)]

    assert_bits_equal(*both(x))


def test_unapply_masks_gathers_and_its_gradient_goes_to_the_written_slots():
    ids = SETS.copy()
    ids[0, 0, 1] = ids[0, 0, 3]  # a repeat: the last slot is written and gets the gradient
    valid = RNG.random(ids.shape) < 0.7
    y = RNG.standard_normal((M * N, K, D)).astype(np.float32)
    new = lambda y: jgather.unapply_masks(y, ids, L, valid=valid)
    old = lambda y: old_unapply_masks(y, ids, valid)
    ct = _cotangent(old, (y,))

    @jax.jit
    def both(y):
        return [(fn(y), jax.vjp(fn, y)[1](ct)) for fn in (new, old)]

    assert_bits_equal(*both(y))
    g = np.asarray(jax.grad(lambda y: jnp.sum(new(y)))(y))
    assert not g[0, 1].any() and (g[0, 3] == valid[0, 0, 3]).all()  # the overwritten slot: 0


def test_apply_masks_layouts_are_named_not_guessed():
    sq = SETS  # [M, N, K] with M == N: both readings have the same shape
    assert sq.shape[0] == sq.shape[1]
    mnk = np.asarray(jgather.apply_masks(X, sq))
    nmk = np.asarray(jgather.apply_masks(X, sq, layout="NMK"))
    np.testing.assert_array_equal(mnk, np.asarray(old_apply_masks(X, sq)))
    np.testing.assert_array_equal(nmk, np.asarray(old_apply_masks(X, sq.transpose(1, 0, 2))))
    assert not np.array_equal(mnk, nmk)
    # one [N, K] set, e.g. multiblock_masking's context_ids, without [None]
    np.testing.assert_array_equal(jgather.apply_masks(X, sq[1]), mnk[N : 2 * N])
    y = RNG.standard_normal((M * N, K, D)).astype(np.float32)
    valid = RNG.random(sq.shape) < 0.5
    want = np.asarray(jgather.unapply_masks(y, sq, L, valid=valid))
    got = jgather.unapply_masks(
        y, sq.transpose(1, 0, 2), L, valid=valid.transpose(1, 0, 2), layout="NMK"
    )
    np.testing.assert_array_equal(got, want)
    one_set = jgather.unapply_masks(y[:N], sq[:1], L)
    np.testing.assert_array_equal(jgather.unapply_masks(y[:N], sq[0], L), one_set)


def test_apply_masks_takes_multiblock_masking_output_as_it_is():
    masks = jgather.multiblock_masking(KEY, N, (8, 8), preset=jgather.IJepaConfig(min_keep=2))
    x = RNG.standard_normal((N, 64, D)).astype(np.float32)
    got = jgather.apply_masks(x, masks.target_ids, layout="NMK", unique_indices=True)
    want = jgather.apply_masks(x, jnp.transpose(masks.target_ids, (1, 0, 2)))
    np.testing.assert_array_equal(got, want)
    ctx = jgather.apply_masks(x, masks.context_ids, unique_indices=True)
    np.testing.assert_array_equal(ctx, jgather.apply_masks(x, masks.context_ids[None]))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: jgather.apply_masks(X, SETS, layout="NKM"), ValueError, "unknown layout"),
        (lambda: jgather.apply_masks(X, SETS[:, :2]), ValueError, "layout='NMK'"),
        (lambda: jgather.apply_masks(X, SETS[0, 0]), ValueError, r"\[N, K\]"),
        (
            lambda: jgather.apply_masks(X, np.zeros((1, N, 2), np.int32), unique_indices=True),
            ValueError,
            "repeats the value 0",
        ),
        (
            lambda: jgather.unapply_masks(np.zeros((M * N, K, D)), SETS, L, layout="nmk"),
            ValueError,
            "unknown layout",
        ),
    ],
)
def test_apply_masks_errors(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert "apply_masks" in str(info.value)


# ----------------------------------------------------------------------------------------------
# The gathers' unique_indices / inverse options.

PERM = np.stack([RNG.permutation(L) for _ in range(N)]).astype(np.int32)  # [N, L]
SUB = PERM[:, :K]  # part of a permutation: K of the L positions per row
SUB_INV = np.where(np.argsort(PERM, axis=1) < K, np.argsort(PERM, axis=1), K).astype(np.int32)
X2 = X[..., 0]  # [N, L]


OPS = {
    "gather": (
        lambda x, **kw: jgather.gather(x, 1, SUB, **kw),
        dict(inverse=SUB_INV),
    ),
    "gather full permutation": (
        lambda x, **kw: jgather.gather(x, 1, PERM, **kw),
        dict(inverse=np.argsort(PERM, axis=1).astype(np.int32)),
    ),
    "take_along_dim": (
        lambda x, **kw: jgather.take_along_dim(x, SUB - L, 1, **kw),  # negatives wrap
        dict(inverse=SUB_INV),
    ),
    "take_along_dim dim=None": (
        lambda x, **kw: jgather.take_along_dim(x, SUB[0], **kw),  # x flattened
        dict(inverse=np.concatenate([SUB_INV[0], np.full(N * L - L, K, np.int32)])),
    ),
    "index_select": (
        lambda x, **kw: jgather.index_select(x, 1, SUB[0], **kw),
        dict(inverse=SUB_INV[0]),
    ),
}


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("option", ["inverse", "unique_indices"])
def test_gather_options_keep_values_and_gradients(name, option):
    fn, kw = OPS[name]
    kw = kw if option == "inverse" else dict(unique_indices=True)
    plain = fn(X2)
    ct = _cotangent(fn, (X2,))
    want = jax.vjp(fn, X2)[1](ct)
    got_value, vjp = jax.vjp(functools.partial(fn, **kw), X2)
    assert_bits_equal((got_value, vjp(ct)), (plain, want))
    _, tangent = jax.jvp(functools.partial(fn, **kw), (X2,), (X2 + 1,))
    assert_bits_equal(tangent, jax.jvp(fn, (X2,), (X2 + 1,))[1])


def test_gather_inverse_under_vmap_and_jit_sums_the_broadcast_operand():
    """An operand shared by several gathers (vmap over index and inverse only) gets the sum of
    their gradients, as with the scatter-add."""
    idx = np.stack([SUB, PERM[:, K : 2 * K]])  # two disjoint parts of each permutation
    inv = np.argsort(PERM, axis=1)
    invs = np.stack([np.where(inv < K, inv, K), np.where((inv >= K) & (inv < 2 * K), inv - K, K)])

    def new(x):
        f = lambda i, v: jgather.gather(x, 1, i, inverse=v)
        return jax.vmap(f)(idx, invs.astype(np.int32))

    old = lambda x: jax.vmap(lambda i: jgather.gather(x, 1, i))(idx)
    ct = _cotangent(old, (X2,))
    grads = [jax.jit(lambda x, fn=fn: jax.vjp(fn, x)[1](ct))(X2) for fn in (new, old)]
    assert_bits_equal(*grads)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: jgather.gather(X2, 1, SUB[:, [0, 0]], unique_indices=True), "repeats the value"),
        (lambda: jgather.index_select(X2, 1, SUB[0, [1, 1]], unique_indices=True), "repeats"),
        (
            lambda: jgather.gather(X2, 1, SUB, inverse=np.argsort(PERM, axis=1) * 0),
            "not the inverse",
        ),
        (lambda: jgather.index_select(X2, 1, SUB[0], inverse=SUB_INV[0][:-1]), "must have shape"),
        (
            lambda: jgather.take_along_dim(X2, SUB, 1, inverse=SUB_INV[:, ::-1]),
            "not the inverse",
        ),
        (
            lambda: jgather.unshuffle(
                X[:, :2], np.tile([0, 0] + [5] * (L - 2), (N, 1)), TOKEN, num_prefix=0
            ),
            "kept slots is read by at most one token",
        ),
    ],
)
def test_a_broken_promise_on_concrete_indices_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_under_jit_a_broken_promise_keeps_the_values():
    """Traced indices cannot be checked: the values are still the gather's, the gradient
    follows the (wrong) inverse as documented."""
    dup = SUB.copy()
    dup[:, 1] = dup[:, 0]
    f = jax.jit(lambda x, i, v: jgather.gather(x, 1, i, inverse=v))
    np.testing.assert_array_equal(f(X2, dup, SUB_INV), np.take_along_axis(X2, dup, 1))
    w = np.arange(1.0, K + 1, dtype=np.float32)
    g = np.asarray(jax.grad(lambda x: (f(x, dup, SUB_INV) * w[None]).sum())(X2))
    # the gradient reads slot inverse[i] at each position i: SUB[:, 1] gets slot 1's
    # cotangent (2), though slot 1 read SUB[:, 0], which gets slot 0's only (1), not 1 + 2
    rows = np.arange(N)
    np.testing.assert_array_equal(g[rows, SUB[:, 0]], np.full(N, 1.0))
    np.testing.assert_array_equal(g[rows, SUB[:, 1]], np.full(N, 2.0))


def test_apply_mask_on_device_arrays_under_a_transfer_guard():
    x = jax.device_put(X)
    mask = jax.device_put(np.tile(np.arange(L) % 3 == 0, (N, 1)))
    with jax.transfer_guard("disallow"):
        out = jgather.apply_mask(x, mask, L - L // 3)
        with pytest.raises(ValueError, match="keep num_keep"):
            jgather.apply_mask(x, mask, 1)
    np.testing.assert_array_equal(out.x_masked, X[:, np.arange(L) % 3 != 0])


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
def test_gradients_on_a_batch_sharded_mesh_stay_local():
    """The gradient's gathers by the inverse keep the batch sharding, with no collectives."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("batch",), devices=jax.devices()[:8])
    x = RNG.standard_normal((8, L, D)).astype(np.float32)
    keys = jax.random.split(KEY, 8)

    def loss(x, k):
        out = jgather.random_masking(k, x, 0.75, num_prefix=1)
        full = jgather.unshuffle(out.x_masked, out, jnp.ones(D))
        return jnp.sum(jnp.square(full))

    grad = jax.jit(jax.grad(loss))
    sharded = [jax.device_put(a, NamedSharding(mesh, P("batch"))) for a in (x, keys)]
    compiled = users_compile(grad.lower(*sharded))
    got = compiled(*sharded)
    np.testing.assert_array_equal(got, grad(x, keys))
    assert got.sharding.is_equivalent_to(NamedSharding(mesh, P("batch")), 3)
    hlo = compiled.as_text()
    assert not any(
        c in hlo for c in ("all-gather", "all-reduce", "all-to-all", "collective-permute")
    )
