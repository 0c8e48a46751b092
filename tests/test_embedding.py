"""embedding and embedding_bag against torch (CPU, float64 autograd) and a NumPy loop.

Values are compared bit for bit (float64, and bfloat16 where torch's rounding is the point);
gradients w.r.t. ``weight`` and ``per_sample_weights`` with torch's autograd in float64. Each
table row is one compile; the shapes are small.
"""

import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jgather

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.usefixtures("x64_on")


def _np(t):
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy().copy()


def _same(got, want):
    got, want = np.asarray(got), _np(want) if isinstance(want, torch.Tensor) else want
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    g, w = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(np.signbit(g), np.signbit(w))


def _torch_grads(fn, weight, extra, cot):
    """torch's output and gradients w.r.t. weight (and the float tensors in ``extra``)."""
    w = torch.from_numpy(weight).requires_grad_(True)
    ex = {k: torch.from_numpy(v).requires_grad_(True) for k, v in extra.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(w, **ex)
    grads = torch.autograd.grad(out, [w, *ex.values()], torch.from_numpy(cot))
    return out, [(g.to_dense() if g.is_sparse else g).numpy() for g in grads]


RNG = np.random.default_rng(0)
W = RNG.normal(size=(7, 4)) * 2  # float64 rows, norms around 4
IDX = np.array([[1, 3, 3, 0], [6, 2, 3, 1]])
FLAT = np.array([4, 1, 1, 0, 5, 6, 6, 6, 2, 3, 1])
OFFSETS = np.array([0, 3, 3, 8])  # bags of 3, 0, 5 and 3 entries

EMBEDDING = {
    "plain": {},
    "padding_idx": {"padding_idx": 3},
    "negative padding_idx": {"padding_idx": -1},
    "scale_grad_by_freq": {"scale_grad_by_freq": True},
    "max_norm": {"max_norm": 1.5},
    "max_norm p=1": {"max_norm": 2.0, "norm_type": 1.0},
    "max_norm p=inf, padding, by_freq": {
        "max_norm": 1.0,
        "norm_type": float("inf"),
        "padding_idx": 1,
        "scale_grad_by_freq": True,
    },
    "sparse (ignored)": {"sparse": True},
}


@pytest.mark.parametrize("kwargs", EMBEDDING.values(), ids=EMBEDDING.keys())
def test_embedding_values_and_gradient_match_torch(kwargs):
    cot = RNG.normal(size=(*IDX.shape, W.shape[1]))
    want, (want_grad,) = _torch_grads(
        lambda w: F.embedding(torch.from_numpy(IDX), w.clone(), **kwargs), W, {}, cot
    )

    def f(w):
        return jgather.embedding(jnp.asarray(IDX), w, **kwargs)

    out, vjp = jax.vjp(f, jnp.asarray(W))
    (grad,) = vjp(jnp.asarray(cot))
    if "max_norm" in kwargs:
        # The norm is XLA's reduction (torch's CPU kernel sums in another order): the
        # renormalised rows agree to the last bit or two.
        np.testing.assert_allclose(np.asarray(out), _np(want), rtol=1e-15, atol=0)
    else:
        _same(out, want)
    np.testing.assert_allclose(np.asarray(grad), want_grad, rtol=1e-13, atol=1e-13)


BAG = {
    "sum": dict(mode="sum"),
    "mean": dict(mode="mean"),
    "max": dict(mode="max"),
    "sum per_sample_weights": dict(mode="sum", psw=True),
    "mean padding_idx": dict(mode="mean", padding_idx=6),
    "max padding_idx": dict(mode="max", padding_idx=1),
    "sum include_last_offset": dict(mode="sum", include_last_offset=True),
    "mean scale_grad_by_freq": dict(mode="mean", scale_grad_by_freq=True),
    "sum psw padding by_freq": dict(mode="sum", psw=True, padding_idx=6, scale_grad_by_freq=True),
    "mean max_norm": dict(mode="mean", max_norm=1.5),
    "max 2-D": dict(mode="max", two_d=True),
    "mean 2-D padding_idx": dict(mode="mean", two_d=True, padding_idx=3),
}


@pytest.mark.parametrize("case", BAG.values(), ids=BAG.keys())
def test_embedding_bag_values_and_gradients_match_torch(case):
    kwargs = dict(case)
    psw, two_d = kwargs.pop("psw", False), kwargs.pop("two_d", False)
    index = IDX if two_d else FLAT
    offsets = None if two_d else OFFSETS
    if kwargs.get("include_last_offset"):
        offsets = np.append(OFFSETS, len(FLAT))
    extra = {"per_sample_weights": RNG.normal(size=index.shape)} if psw else {}
    num_bags = index.shape[0] if two_d else 4
    cot = RNG.normal(size=(num_bags, W.shape[1]))
    t_off = None if offsets is None else torch.from_numpy(offsets)
    # torch's CPU backward scales by the frequency of another index than the row's own (see
    # the test below); the reference is torch's gradient without it, divided per row by the
    # frequency of the row's index, which is what the option documents.
    by_freq = {k: v for k, v in kwargs.items() if k != "scale_grad_by_freq"}
    want, want_grads = _torch_grads(
        lambda w, **ex: F.embedding_bag(torch.from_numpy(index), w.clone(), t_off, **by_freq, **ex),
        W,
        extra,
        cot,
    )
    if kwargs.get("scale_grad_by_freq"):
        freq = np.bincount(index.reshape(-1), minlength=W.shape[0])
        want_grads[0] = want_grads[0] / np.maximum(freq, 1)[:, None]

    def f(w, *ex):
        named = dict(zip(extra, ex, strict=True))
        return jgather.embedding_bag(jnp.asarray(index), w, offsets, **kwargs, **named)

    out, vjp = jax.vjp(jax.jit(f), jnp.asarray(W), *map(jnp.asarray, extra.values()))
    grads = vjp(jnp.asarray(cot))
    if "max_norm" in kwargs:
        np.testing.assert_allclose(np.asarray(out), _np(want), rtol=1e-15, atol=0)
    else:
        _same(out, want)
    for g, w in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-13, atol=1e-13)


def test_scale_grad_by_freq_uses_each_index_own_frequency():
    """torch's CPU embedding_bag backward divides the gradient of the k-th smallest distinct
    index by the frequency of the k-th entry of the sorted input (F.embedding divides by the
    index's own frequency, as documented); jgather divides by the index's own frequency.
    Both rules are checked here on one input where they differ."""
    index, offsets = np.array([0, 0, 1, 2, 2, 0, 3]), np.array([0, 3])
    cot = np.array([[1.0], [10.0]])
    weight = np.ones((4, 1))
    _, (torch_grad,) = _torch_grads(
        lambda w: F.embedding_bag(
            torch.from_numpy(index),
            w,
            torch.from_numpy(offsets),
            mode="sum",
            scale_grad_by_freq=True,
        ),
        weight,
        {},
        cot,
    )
    per_row = np.array([1 + 1 + 10, 1, 10 + 10, 10])  # the cotangents each row receives
    freq = np.bincount(index)
    ordered = np.sort(index)
    np.testing.assert_allclose(torch_grad[:, 0], per_row / freq[ordered[: len(freq)]])
    f = lambda w: jgather.embedding_bag(index, w, offsets, mode="sum", scale_grad_by_freq=True)
    _, vjp = jax.vjp(f, jnp.asarray(weight))
    np.testing.assert_allclose(np.asarray(vjp(jnp.asarray(cot))[0])[:, 0], per_row / freq)


def _numpy_bags(weight, index, offsets, mode, padding_idx=None):
    """The documented formula, one bag at a time: an empty bag gives zeros."""
    ends = [*offsets[1:], len(index)]
    out = np.zeros((len(offsets), weight.shape[1]), weight.dtype)
    for b, (lo, hi) in enumerate(zip(offsets, ends, strict=True)):
        rows = [weight[i] for i in index[lo:hi] if i != padding_idx]
        if rows:
            reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
            out[b] = reduce(np.stack(rows), axis=0)
    return out


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_numpy_under_jit_and_vmap(mode):
    """A batch of (index, offsets) pairs under jax.vmap of jax.jit, against the NumPy loop."""
    rng = np.random.default_rng(1)
    index = rng.integers(0, 7, size=(3, 10))
    offsets = np.array([[0, 2, 2, 7], [0, 0, 5, 10], [0, 1, 2, 3]])
    f = jax.jit(lambda i, o: jgather.embedding_bag(i, W, o, mode=mode, padding_idx=2))
    got = jax.vmap(f)(jnp.asarray(index), jnp.asarray(offsets))
    for k in range(3):
        want = _numpy_bags(W, index[k], offsets[k], mode, padding_idx=2)
        np.testing.assert_allclose(np.asarray(got[k]), want, rtol=1e-14, atol=1e-15)


def test_embedding_under_vmap_over_weights_and_indices():
    weights = RNG.normal(size=(3, 7, 4))
    index = RNG.integers(0, 7, size=(3, 5))
    got = jax.vmap(jax.jit(lambda i, w: jgather.embedding(i, w, padding_idx=0)))(index, weights)
    np.testing.assert_array_equal(np.asarray(got), weights[np.arange(3)[:, None], index])


def test_max_keeps_torch_first_entry_on_ties_zeros_and_nan():
    """torch's CPU 'max' replaces a bag's first entry only by a strictly greater one."""
    nan = np.nan
    weight = np.array([[1.0, -0.0, nan], [1.0, 0.0, 3.0], [0.5, 0.0, 2.0]])
    for index in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        w = torch.tensor(weight, requires_grad=True)
        want = F.embedding_bag(torch.tensor(index), w, torch.tensor([0]), mode="max")
        (want_grad,) = torch.autograd.grad(want.sum(), w)

        def f(x, index=index):
            return jgather.embedding_bag(jnp.asarray(index), x, jnp.array([0]), mode="max")

        out, vjp = jax.vjp(f, jnp.asarray(weight))
        _same(out, want)
        np.testing.assert_array_equal(np.asarray(vjp(jnp.ones_like(out))[0]), want_grad)


def test_low_precision_sums_round_as_torch():
    """bfloat16 bags add in float32 and round once: without padding_idx ties go away from
    zero (torch's CPU kernel), with it to nearest even; 512 ones sum to 512."""
    rng = np.random.default_rng(2)
    weight = torch.from_numpy(rng.normal(size=(50, 16)).astype(np.float32)).bfloat16()
    index = torch.from_numpy(rng.integers(0, 50, size=400))
    offsets = torch.arange(0, 400, 20)
    j = (jnp.asarray(_np(index)), jnp.asarray(_np(weight)), jnp.asarray(_np(offsets)))
    f = jax.jit(jgather.embedding_bag, static_argnames=("mode", "padding_idx"))
    for mode in ("sum", "mean"):
        for padding in (None, 3):
            want = F.embedding_bag(index, weight, offsets, mode=mode, padding_idx=padding)
            _same(f(*j, mode=mode, padding_idx=padding), want)
    ones = jnp.ones((1, 4), jnp.bfloat16)
    got = jgather.embedding_bag(jnp.zeros(512, jnp.int32), ones, jnp.array([0]), mode="sum")
    assert got.dtype == jnp.bfloat16 and float(got[0, 0]) == 512.0


def test_max_norm_does_not_touch_weight_and_reads_renormalised_rows():
    weight = jnp.asarray(W)
    out = jgather.embedding(jnp.asarray(IDX), weight, max_norm=1.0)
    norms = np.linalg.norm(np.asarray(out), axis=-1)
    assert np.all(norms <= 1.0 + 1e-12) and np.all(np.asarray(weight) == W)


ERRORS = [
    (jgather.embedding, (IDX.astype(float), W), {}, TypeError, "integer dtype"),
    (jgather.embedding, (IDX, W[0]), {}, ValueError, "2-D"),
    (jgather.embedding, (IDX, W), {"padding_idx": 7}, IndexError, "padding_idx"),
    (jgather.embedding, (np.array([7]), W), {}, IndexError, "out of range"),
    (jgather.embedding, (np.array([-1]), W), {}, IndexError, "out of range"),
    (jgather.embedding, (IDX, W.astype(int)), {"max_norm": 1.0}, TypeError, "max_norm"),
    (jgather.embedding_bag, (FLAT, W), {}, ValueError, "offsets"),
    (jgather.embedding_bag, (IDX, W, OFFSETS), {}, ValueError, "offsets must be None"),
    (jgather.embedding_bag, (FLAT[None, None], W), {}, ValueError, "1-D"),
    (jgather.embedding_bag, (FLAT, W.astype(int), OFFSETS), {}, TypeError, "floating"),
    (jgather.embedding_bag, (FLAT, W, OFFSETS), {"mode": "prod"}, ValueError, "mode"),
    (jgather.embedding_bag, (FLAT, W, np.array([1, 3])), {}, ValueError, "offsets\\[0\\]"),
    (jgather.embedding_bag, (FLAT, W, np.array([0, 4, 2])), {}, ValueError, "non-decreasing"),
    (jgather.embedding_bag, (FLAT, W, np.array([0, 12])), {}, ValueError, "greater than"),
    (jgather.embedding_bag, (FLAT, W, OFFSETS[:, None]), {}, ValueError, "1-D"),
    (jgather.embedding_bag, (FLAT, W, OFFSETS * 1.0), {}, TypeError, "integer"),
    (
        jgather.embedding_bag,
        (FLAT, W, np.array([], int)),
        {"include_last_offset": True},
        ValueError,
        "at least one",
    ),
    (
        jgather.embedding_bag,
        (FLAT, W, OFFSETS),
        {"per_sample_weights": np.ones(11)},
        ValueError,
        "mode='sum'",
    ),
    (
        jgather.embedding_bag,
        (FLAT, W, OFFSETS),
        {"mode": "sum", "per_sample_weights": np.ones(10)},
        ValueError,
        "shape",
    ),
    (
        jgather.embedding_bag,
        (FLAT, W, OFFSETS),
        {"mode": "sum", "per_sample_weights": np.ones(11, np.float32)},
        TypeError,
        "dtype",
    ),
    (jgather.embedding_bag, (np.array([0, 7]), W, np.array([0])), {}, IndexError, "7"),
    (jgather.embedding_bag, (FLAT, W, OFFSETS), {"padding_idx": -8}, IndexError, "padding"),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "kind", "words"), ERRORS)
def test_bad_arguments_raise_clear_errors(fn, args, kwargs, kind, words):
    """The documented type, the function's name first, and the key words."""
    with pytest.raises(kind, match=words) as info:
        fn(*args, **kwargs)
    assert type(info.value) is kind
    assert str(info.value).startswith(f"{fn.__name__}: ")
