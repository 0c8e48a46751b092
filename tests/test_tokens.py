"""jgather.tokens against torch re-statements of ToMe, EViT and DynamicViT.

The references below are our own few-line torch statements of what the reference functions
compute (ToMe's ``tome/merge.py``, EViT's ``complement_idx`` and fused token, DynamicViT's
``batch_index_select``), written per sample with plain indexing; the reduction itself is
torch's ``Tensor.scatter_reduce`` (``include_self=True``), whose semantics ToMe relies on.
float64 values and gradients must agree bit for bit; float32 and bfloat16 within the
tolerances the docstrings state.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pipelines import users_compile

import jgather
from jgather import tokens

RNG = np.random.default_rng(0)


def _torch():
    return pytest.importorskip("torch")


# ----------------------------------------------------------------------------------------------
# Torch re-statements (one sample at a time).


def _split_bipartite(torch, m, r, cls, dist):
    """ToMe's balanced matching of one [T, C] metric: (merged a-ids, kept a-ids, match)."""
    u = m / m.norm(dim=-1, keepdim=True)
    sim = u[0::2] @ u[1::2].T
    if cls:
        sim[0, :] = -math.inf
    if dist:
        sim[:, 0] = -math.inf
    best, match = sim.max(dim=-1)
    order = torch.argsort(best, descending=True, stable=True)
    merged, kept = order[:r], order[r:]
    if cls:
        kept = kept.sort().values
    return merged, kept, match


def tome_ref(torch, metric, x, r, mode="mean", cls=False, dist=False):
    """ToMe's bipartite merge and unmerge, per sample: (merged [N, T - r, C], unmerged)."""
    t, c = x.shape[1], x.shape[2]
    r = min(r, (t - int(cls) - int(dist)) // 2)
    if r <= 0:
        return x, x
    outs, backs = [], []
    for m, xs in zip(metric, x, strict=True):
        merged, kept, match = _split_bipartite(torch, m, r, cls, dist)
        a, b = xs[0::2], xs[1::2]
        into = match[merged][:, None].expand(-1, c)
        b = b.scatter_reduce(0, into, a[merged], reduce=mode)
        stay = a[kept]
        if dist:
            y = torch.cat([stay[:1], b[:1], stay[1:], b[1:]])
        else:
            y = torch.cat([stay, b])
        outs.append(y)
        # Unmerge of y: b tokens back at the odd positions, kept a tokens at theirs, merged a
        # tokens take their match's value.
        yb = torch.cat([y[1:2], y[len(kept) + 1 :]]) if dist else y[len(kept) :]
        ya = torch.cat([y[:1], y[2 : len(kept) + 1]]) if dist else y[: len(kept)]
        full = torch.zeros(t, c, dtype=y.dtype)
        full[1::2] = yb
        full[2 * kept] = ya
        full[2 * merged] = yb[match[merged]]
        backs.append(full)
    return torch.stack(outs), torch.stack(backs)


def kth_ref(torch, metric, x, k, mode="mean"):
    g, c = x.shape[1] // k, x.shape[2]
    a_pos = [p for p in range(g * k) if p % k != k - 1]
    b_pos = [p for p in range(g * k) if p % k == k - 1]
    outs, backs = [], []
    for m, xs in zip(metric, x, strict=True):
        u = m / m.norm(dim=-1, keepdim=True)
        match = (u[a_pos] @ u[b_pos].T).max(dim=-1).indices
        y = xs[b_pos].scatter_reduce(0, match[:, None].expand(-1, c), xs[a_pos], reduce=mode)
        full = torch.zeros(g * k, c, dtype=y.dtype)
        full[b_pos] = y
        full[a_pos] = y[match]
        outs.append(y)
        backs.append(full)
    return torch.stack(outs), torch.stack(backs)


def random_ref(torch, metric, x, r, noise, mode="mean"):
    c = x.shape[2]
    outs, backs = [], []
    for m, xs, z in zip(metric, x, noise, strict=True):
        perm = torch.argsort(z, stable=True)
        a, b = perm[:r], perm[r:]
        u = m / m.norm(dim=-1, keepdim=True)
        match = (u[a] @ u[b].T).max(dim=-1).indices
        y = xs[b].scatter_reduce(0, match[:, None].expand(-1, c), xs[a], reduce=mode)
        full = torch.zeros(xs.shape, dtype=y.dtype)
        full[b] = y
        full[a] = y[match]
        outs.append(y)
        backs.append(full)
    return torch.stack(outs), torch.stack(backs)


def complement_ref(torch, idx, dim):
    rows = idx.reshape(-1, idx.shape[-1]).tolist()
    out = [sorted(set(range(dim)) - set(row)) for row in rows]
    return torch.tensor(out).reshape(*idx.shape[:-1], dim - idx.shape[-1])


def evit_ref(torch, x, scores, k, fuse):
    """EViT's step after its attention: class token, top-k by score, fused rest."""
    c = x.shape[2]
    ids = torch.topk(scores, k, dim=1, largest=True, sorted=True).indices
    body = x[:, 1:]
    parts = [x[:, :1], torch.gather(body, 1, ids[..., None].expand(-1, -1, c))]
    if fuse:
        rest = complement_ref(torch, ids, scores.shape[1])
        w = torch.gather(scores, 1, rest)
        rest_x = torch.gather(body, 1, rest[..., None].expand(-1, -1, c))
        parts.append((rest_x * w[..., None]).sum(dim=1, keepdim=True))
    return torch.cat(parts, dim=1), ids


def parse_r_ref(num_layers, r):
    """ToMe's ``parse_r``: constant, (r, inflection) linear, or a padded list."""
    if isinstance(r, list):
        return r + [0] * (num_layers - len(r))
    r, inflect = r if isinstance(r, tuple) else (r, 0)
    low = int(r * (1.0 - inflect))
    return [int(low + (2 * r - 2 * low) / (num_layers - 1) * i) for i in range(num_layers)]


def _t(torch, a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


# ----------------------------------------------------------------------------------------------
# ToMe: values and gradients, float64, bit for bit.

N, T, C = 3, 13, 5
# (r, class_token, distill_token, mode): r = 20 > T // 2 checks ToMe's clamp.
BIPARTITE = [
    (4, False, False, "mean"),
    (4, True, True, "mean"),
    (20, True, False, "sum"),
    (3, False, True, "amax"),
    (0, False, False, "mean"),
]


@pytest.mark.parametrize("r, cls, dist, mode", BIPARTITE)
def test_bipartite_merge_unmerge_and_gradients_match_tome_float64(r, cls, dist, mode, x64_on):
    torch = _torch()
    metric = RNG.standard_normal((N, T, C))
    x = RNG.standard_normal((N, T, C))
    w = RNG.standard_normal((N, T, C))
    xt = _t(torch, x, grad=True)
    want, back = tome_ref(torch, _t(torch, metric), xt, r, mode, cls, dist)
    m = tokens.bipartite_soft_matching(jnp.asarray(metric), r, class_token=cls, distill_token=dist)
    got = tokens.merge(m, jnp.asarray(x), mode)
    np.testing.assert_array_equal(np.asarray(got), want.detach().numpy())
    np.testing.assert_array_equal(np.asarray(tokens.unmerge(m, got)), back.detach().numpy())
    assert m.r == min(r, (T - cls - dist) // 2) and got.shape[1] == T - m.r
    # Gradients: merge's bit for bit ('sum', 'mean'); 'amax' and merge + unmerge up to the
    # order in which a token's gradient adds up its copies (jax's scatter-max rule, torch's
    # autograd): a few ulp.
    w_out = RNG.standard_normal(want.shape)
    (want * _t(torch, w_out)).sum().backward(retain_graph=True)
    grad = jax.grad(lambda x: jnp.sum(tokens.merge(m, x, mode) * w_out))(jnp.asarray(x))
    exact = mode != "amax"
    check = np.testing.assert_array_equal if exact else _ulps
    check(np.asarray(grad), xt.grad.numpy())
    xt.grad = None
    (back * _t(torch, w)).sum().backward()
    loss = lambda x: jnp.sum(tokens.unmerge(m, tokens.merge(m, x, mode)) * w)
    _ulps(np.asarray(jax.grad(loss)(jnp.asarray(x))), xt.grad.numpy())


def _ulps(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


def test_merge_wavg_source_and_proportional_attention_over_an_r_schedule(x64_on):
    """A ToMe stack: per layer a new metric, merge_source and merge_wavg, over ToMe's
    decreasing schedule, with a class token; values and the gradient of the output."""
    torch = _torch()
    layers, t = 3, 15
    schedule = tokens.r_schedule(layers, (3, -1.0))
    assert schedule == parse_r_ref(layers, (3, -1.0))
    weights = RNG.standard_normal((layers, C, C))
    x0 = RNG.standard_normal((2, t, C))

    def stack_jax(x):
        size = source = None
        for w, r in zip(weights, schedule, strict=True):
            m = tokens.bipartite_soft_matching(x @ w, r, class_token=True)
            source = tokens.merge_source(m, x, source)
            x, size = tokens.merge_wavg(m, x, size)
        return x, size, source

    def stack_torch(x):
        size = torch.ones_like(x[..., :1])
        source = torch.eye(t)[None].expand(2, t, t)
        for w, r in zip(weights, schedule, strict=True):
            metric = x.detach() @ _t(torch, w)
            source = tome_ref(torch, metric, source, r, "amax", True)[0]
            x = tome_ref(torch, metric, x * size, r, "sum", True)[0]
            size = tome_ref(torch, metric, size, r, "sum", True)[0]
            x = x / size
        return x, size, source

    xt = _t(torch, x0, grad=True)
    want = stack_torch(xt)
    got = stack_jax(jnp.asarray(x0))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(g), w.detach().numpy())
    assert got[0].shape[1] == t - sum(schedule)
    want[0].sum().backward()
    grad = jax.grad(lambda x: jnp.sum(stack_jax(x)[0]))(jnp.asarray(x0))
    _ulps(np.asarray(grad), xt.grad.numpy())
    # ToMe's attention adds size.log()[:, None, None, :, 0] to [N, H, T, T] logits.
    size = got[1]
    bias = tokens.proportional_attention_bias(size)
    np.testing.assert_array_equal(
        np.asarray(bias), torch.tensor(np.asarray(size)).log()[:, None, None, :, 0].numpy()
    )


@pytest.mark.parametrize("k", [2, 5])
def test_kth_matching_matches_tome_float64(k, x64_on):
    torch = _torch()
    metric, x = RNG.standard_normal((2, 2, T, C))
    xt = _t(torch, x, grad=True)
    want, back = kth_ref(torch, _t(torch, metric), xt, k)
    m = tokens.kth_bipartite_soft_matching(jnp.asarray(metric), k)
    got = tokens.merge(m, jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(got), want.detach().numpy())
    np.testing.assert_array_equal(np.asarray(tokens.unmerge(m, got)), back.detach().numpy())
    back.sum().backward()
    grad = jax.grad(lambda x: jnp.sum(tokens.unmerge(m, tokens.merge(m, x))))(jnp.asarray(x))
    _ulps(np.asarray(grad), xt.grad.numpy())


def test_random_matching_matches_tome_for_the_same_noise_and_draws_permutations(x64_on):
    torch = _torch()
    metric, x = RNG.standard_normal((2, N, T, C))
    noise = RNG.random((N, T))
    want, back = random_ref(torch, _t(torch, metric), _t(torch, x), 5, _t(torch, noise))
    m = tokens.random_bipartite_soft_matching(None, jnp.asarray(metric), 5, noise=noise)
    got = tokens.merge(m, jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(got), want.numpy())
    np.testing.assert_array_equal(np.asarray(tokens.unmerge(m, got)), back.numpy())
    # With keys: the split is a permutation (src and keep cover every token once), the same
    # for the same key, per sample for a batch of keys.
    keys = jax.random.split(jax.random.key(0), N)
    mk = tokens.random_bipartite_soft_matching(keys, jnp.asarray(metric), 5)
    both = np.sort(np.concatenate([mk.src, mk.keep], axis=1), axis=1)
    np.testing.assert_array_equal(both, np.broadcast_to(np.arange(T), (N, T)))
    again = tokens.random_bipartite_soft_matching(keys[::-1], jnp.asarray(metric[::-1]), 5)
    np.testing.assert_array_equal(again.src[::-1], mk.src)  # sample i follows keys[i]


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (jnp.bfloat16, 1e-2)])
def test_merge_in_reduced_precision_within_the_stated_tolerance(dtype, rtol):
    torch = _torch()
    metric = RNG.standard_normal((N, 32, C)).astype(np.float32)
    x = RNG.standard_normal((N, 32, 8)).astype(np.float32)
    tdtype = torch.float32 if dtype == np.float32 else torch.bfloat16
    xt = torch.tensor(x).to(tdtype)
    m = tokens.bipartite_soft_matching(jnp.asarray(metric), 12)
    xj = jnp.asarray(x).astype(dtype)
    for mode in ("mean", "sum"):
        want = tome_ref(torch, torch.tensor(metric), xt, 12, mode)[0].float().numpy()
        got = np.asarray(tokens.merge(m, xj, mode).astype(np.float32))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
    got, size = tokens.merge_wavg(m, xj)
    assert got.dtype == xj.dtype and size.dtype == xj.dtype


def test_r_schedule_matches_parse_r():
    for layers, r in [
        (12, 16),
        (12, (16, -1.0)),
        (12, (8, 0.5)),
        (5, [3, 2]),
        (3, 0),
        (4, [1] * 6),
    ]:
        assert tokens.r_schedule(layers, r) == parse_r_ref(layers, r), (layers, r)
    assert tokens.r_schedule(1, 5) == [5]  # ToMe divides by zero here


# ----------------------------------------------------------------------------------------------
# The Merge pytree under transformations.


def test_merge_is_a_pytree_that_jit_vmap_and_scan_carry():
    metric = jnp.asarray(RNG.standard_normal((2, N, T, C)).astype(np.float32))
    x = metric + 1

    @jax.jit
    def match(mt):
        return tokens.bipartite_soft_matching(mt, 4, class_token=True)

    m = match(metric[0])  # a Merge out of jit
    assert isinstance(m, tokens.Merge) and m.r == 4 and m.num_tokens == T
    applied = jax.jit(lambda m, x: tokens.merge_wavg(m, x))(m, x[0])  # and into jit
    chex.assert_trees_all_equal(applied, tokens.merge_wavg(m, x[0]))
    # ToMe's unpacking, and the bound methods as ToMe-style merge functions.
    merge_fn, unmerge_fn = m
    chex.assert_trees_all_equal(tokens.merge_wavg(merge_fn, x[0]), applied)
    np.testing.assert_array_equal(unmerge_fn(merge_fn(x[0])), tokens.unmerge(m, m.merge(x[0])))
    # vmap over an extra leading axis equals the slices.
    both = jax.vmap(lambda mt, xt: tokens.merge(match(mt), xt))(metric, x)
    for i in range(2):
        np.testing.assert_array_equal(both[i], tokens.merge(match(metric[i]), x[i]))
    # A stack of matchings (one per scan step) through lax.scan.
    stacked = jax.tree.map(lambda *a: jnp.stack(a), m, match(metric[1]))
    _, ys = jax.lax.scan(lambda c, mi: (c, tokens.merge(mi, x[0])), 0, stacked)
    np.testing.assert_array_equal(ys[1], tokens.merge(match(metric[1]), x[0]))


# ----------------------------------------------------------------------------------------------
# Pruning: EViT and DynamicViT.


@pytest.mark.parametrize("fuse", [False, True])
def test_keep_topk_matches_evit_values_and_gradients(fuse, x64_on):
    torch = _torch()
    length, k = 11, 4
    x = RNG.standard_normal((N, 1 + length, C))
    scores = RNG.random((N, length))
    xt, st = _t(torch, x, grad=True), _t(torch, scores, grad=True)
    want, want_ids = evit_ref(torch, xt, st, k, fuse)
    w = RNG.standard_normal(want.shape)
    (want * _t(torch, w)).sum().backward()
    fn = lambda x, s: tokens.keep_topk(x, s, k, fuse=fuse, num_prefix=1)
    got = fn(jnp.asarray(x), jnp.asarray(scores))
    np.testing.assert_array_equal(got.ids, want_ids.numpy())
    # Kept tokens exactly; the fused token up to summation order (torch.sum vs XLA's reduce).
    np.testing.assert_array_equal(got.tokens[:, : 1 + k], want[:, : 1 + k].detach().numpy())
    np.testing.assert_allclose(got.tokens, want.detach().numpy(), rtol=1e-14, atol=1e-14)
    gx, gs = jax.grad(lambda x, s: jnp.sum(fn(x, s).tokens * w), (0, 1))(
        jnp.asarray(x), jnp.asarray(scores)
    )
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-14, atol=1e-14)
    if fuse:
        np.testing.assert_allclose(gs, st.grad.numpy(), rtol=1e-14, atol=1e-14)
    else:  # the indices carry no gradient; without the fused token nothing reaches scores
        assert st.grad is None and not np.any(gs)


def test_batch_index_select_and_complement_idx_match_the_references():
    torch = _torch()
    x3 = RNG.standard_normal((N, 9, C)).astype(np.float32)
    idx = RNG.integers(0, 9, (N, 6)).astype(np.int32)
    rows = _t(torch, np.arange(N))[:, None]
    for x in (x3, x3[..., 0]):
        want = _t(torch, x)[rows, _t(torch, idx).long()].numpy()
        np.testing.assert_array_equal(tokens.batch_index_select(jnp.asarray(x), idx), want)
    with pytest.raises(IndexError, match="batch_index_select"):
        tokens.batch_index_select(jnp.asarray(x3), idx + 9)
    ids = np.argsort(RNG.random((2, N, 9)), axis=-1)[..., :4].astype(np.int32)
    want = complement_ref(torch, _t(torch, ids), 9).numpy()
    np.testing.assert_array_equal(tokens.complement_idx(jnp.asarray(ids), 9), want)
    assert tokens.complement_idx(jnp.asarray(ids), 9).shape == (2, N, 5)


# ----------------------------------------------------------------------------------------------
# Score-guided masking.


def test_score_masking_is_top_k_in_maes_format_and_feeds_unshuffle_and_loss():
    length, d = 16, 3
    x = jnp.asarray(RNG.standard_normal((N, 1 + length, d)).astype(np.float32))
    scores = RNG.standard_normal((N, length)).astype(np.float32)
    out = tokens.score_masking(None, x, scores, 0.75, num_prefix=1)
    order = np.argsort(-scores, axis=1, kind="stable")  # NumPy statement of the top-k
    len_keep = int(length * (1 - 0.75))
    kept = np.take_along_axis(np.asarray(x[:, 1:]), order[:, :len_keep, None], 1)
    np.testing.assert_array_equal(out.x_masked[:, 1:], kept)
    np.testing.assert_array_equal(out.x_masked[:, :1], x[:, :1])
    np.testing.assert_array_equal(out.ids_restore, np.argsort(order, axis=1))
    ranks = np.argsort(order, axis=1)
    np.testing.assert_array_equal(out.mask, (ranks >= len_keep).astype(np.float32))
    # unshuffle puts the kept tokens back in place; mae_loss reads the mask.
    full = jgather.unshuffle(out.x_masked, out, jnp.zeros((d,)), num_prefix=1)
    np.testing.assert_array_equal(
        np.where(out.mask[..., None] == 0, x[:, 1:], 0), np.asarray(full[:, 1:])
    )
    loss = jgather.mae_loss(pred=x[:, 1:], target=x[:, 1:] + 1, mask=out.mask)
    np.testing.assert_allclose(loss, 1.0, rtol=1e-6)


def test_score_masking_gumbel_keeps_tokens_with_softmax_probabilities():
    """Gumbel-top-1 of L = 4 scores over 4096 samples: the frequency each token is kept is
    its softmax probability, within 5 binomial standard deviations (fixed key)."""
    n, logits = 4096, np.log(np.array([0.1, 0.2, 0.3, 0.4], np.float32))
    scores = np.broadcast_to(logits, (n, 4))
    out = tokens.score_masking(jax.random.key(7), jnp.zeros((n, 4, 1)), scores, 0.75, gumbel=True)
    freq = 1 - np.asarray(out.mask).mean(axis=0)
    p = np.exp(logits) / np.exp(logits).sum()
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / n)), (freq, p)
    again = tokens.score_masking(jax.random.key(7), jnp.zeros((n, 4, 1)), scores, 0.75, gumbel=True)
    np.testing.assert_array_equal(again.mask, out.mask)


# ----------------------------------------------------------------------------------------------
# Bad input: clear errors naming the function.


def _traced_r(metric):
    return jax.jit(lambda r: tokens.bipartite_soft_matching(metric, r).keep)(3)


X3 = jnp.ones((2, 8, 4))
M = tokens.bipartite_soft_matching(X3, 2)
ERRORS = [
    (lambda: _traced_r(X3), TypeError, "bipartite_soft_matching: r fixes"),
    (lambda: tokens.bipartite_soft_matching(X3, -1), ValueError, "r must be >= 0"),
    (lambda: tokens.bipartite_soft_matching(X3[0], 1), ValueError, "[N, T, C]"),
    (lambda: tokens.bipartite_soft_matching(X3, 1.5), TypeError, "r must be an int"),
    (lambda: tokens.bipartite_soft_matching(X3.astype(int), 1), TypeError, "floating"),
    (lambda: tokens.kth_bipartite_soft_matching(X3, 9), ValueError, "k must be <= 8"),
    (lambda: tokens.random_bipartite_soft_matching(None, X3, 2), ValueError, "PRNG key"),
    (lambda: tokens.random_bipartite_soft_matching(jax.random.key(0), X3, 8), ValueError, "<= 7"),
    (lambda: tokens.merge(M, X3[:, :7]), ValueError, "merge: x must have shape"),
    (lambda: tokens.merge(lambda x: x, X3), TypeError, "jgather.tokens.Merge"),
    (lambda: tokens.unmerge(M, X3), ValueError, "unmerge: x must have shape"),
    (lambda: tokens.merge(M, X3, "median"), ValueError, "merge: unknown mode 'median'"),
    (lambda: tokens.merge_wavg(3, X3), TypeError, "merge_wavg"),
    (lambda: tokens.keep_topk(X3, jnp.ones((2, 8)), 0), ValueError, "k must be >= 1"),
    (lambda: tokens.keep_topk(X3, jnp.ones((2, 7)), 2), ValueError, "scores must have shape"),
    (
        lambda: jax.jit(lambda k: tokens.keep_topk(X3, jnp.ones((2, 8)), k).ids)(2),
        TypeError,
        "keep_topk: k fixes",
    ),
    (lambda: tokens.complement_idx(jnp.array([[1, 1]]), 4), ValueError, "distinct"),
    (lambda: tokens.complement_idx(jnp.array([[1, 4]]), 4), IndexError, "[0, 4)"),
    (lambda: tokens.complement_idx(jnp.array([[1, 2]]), 1), ValueError, "dim must be >= 2"),
    (lambda: tokens.score_masking(None, X3, jnp.ones((2, 8)), 0.5, gumbel=True), ValueError, "key"),
    (lambda: tokens.score_masking(None, X3, jnp.ones((2, 8), int), 0.5), TypeError, "floating"),
    (lambda: tokens.score_masking(None, X3, jnp.ones((2, 8)), 1.5), ValueError, "mask_ratio"),
    (lambda: tokens.r_schedule(0, 4), ValueError, "num_layers"),
    (lambda: tokens.r_schedule(4, "8"), TypeError, "r_schedule"),
    (lambda: tokens.proportional_attention_bias(X3), ValueError, "[N, T, 1]"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_bad_input_is_a_clear_error(i):
    call, kind, words = ERRORS[i]
    with pytest.raises(kind) as info:
        call()
    assert words in str(info.value), str(info.value)


# ----------------------------------------------------------------------------------------------
# Batch-sharded on both mesh kinds: same values, sharded outputs, no collectives.


def _mesh(kind):
    from jax.sharding import Mesh

    devices = jax.devices()[:8]
    if kind == "explicit":
        return jax.make_mesh((8,), ("batch",), devices=devices)
    return Mesh(np.array(devices), ("batch",))


def _collectives(compiled):
    import re

    return re.findall(r"all-gather|all-reduce|all-to-all|collective-permute", compiled.as_text())


SHARD_IN = [RNG.standard_normal(s).astype(np.float32) for s in ((16, 12, 4), (16, 12, 4), (16, 11))]


def _sharded_calls(metric, x, scores, *, merges=True):
    m = tokens.bipartite_soft_matching(metric, 3, class_token=True)
    r = tokens.random_bipartite_soft_matching(jax.random.key(0), metric, 2)
    kept = tokens.keep_topk(x, scores, 4, fuse=True, num_prefix=1)
    masked = tokens.score_masking(jax.random.key(1), x, scores, 0.5, gumbel=True, num_prefix=1)
    out = (tokens.unmerge(m, x[:, :9]), r.slot, kept.tokens, *masked)
    if merges:
        y, size = tokens.merge_wavg(m, x)
        out = (*out, y, size, tokens.merge(r, x))
    return out


@pytest.mark.skipif(jax.device_count() < 8, reason="tests/conftest.py sets 8 host devices")
@pytest.mark.parametrize("kind", ["explicit", "auto"])
def test_batch_sharded_on_both_mesh_kinds_without_collectives(kind):
    """Same values, batch-sharded outputs, no collectives; on an auto-axis mesh under jit the
    merges' scatter is the ops' known gap (tests/test_ops_sharding.py), checked below."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = _mesh(kind)
    batch = NamedSharding(mesh, P("batch"))
    sharded = [jax.device_put(a, batch) for a in SHARD_IN]
    want = _sharded_calls(*SHARD_IN)
    compiled = users_compile(jax.jit(_sharded_calls).lower(*sharded))
    for got in (compiled(*sharded), _sharded_calls(*sharded)):
        chex.assert_trees_all_equal(got, want)
        for a in got:
            assert a.sharding.is_equivalent_to(batch, a.ndim)
    if kind == "auto":
        compiled = users_compile(
            jax.jit(lambda *a: _sharded_calls(*a, merges=False)).lower(*sharded)
        )
    assert not _collectives(compiled)


@pytest.mark.skipif(jax.device_count() < 8, reason="tests/conftest.py sets 8 host devices")
@pytest.mark.xfail(strict=True, reason="auto-axis mesh under jit: XLA all-gathers the scatter")
def test_merge_on_an_auto_mesh_under_jit_has_no_collectives():
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    batch = NamedSharding(_mesh("auto"), P("batch"))
    metric, x, _ = (jax.device_put(a, batch) for a in SHARD_IN)
    fn = lambda m, x: tokens.merge(tokens.bipartite_soft_matching(m, 3), x, "sum")
    assert not _collectives(users_compile(jax.jit(fn).lower(metric, x)))
