"""jgather.segment against torch: values and gradients, when torch is importable.

These tests need only torch: they compare with torch-native re-statements of each
torch_scatter function, written from torch_scatter's sources (torch_scatter itself, a compiled
extension, is compared in ``test_torch_scatter_parity.py``): ``Tensor.scatter_add_`` /
``scatter_reduce_`` for the scatter family, torch_scatter's composite formulas for std,
logsumexp, softmax and log_softmax, ``torch.segment_reduce`` for CSR, and torch_scatter's
backward for max/min (the cotangent scattered to the argmax, nothing to the sentinel).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather.segment as seg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
E, F, S = 40, 3, 12
SRC = RNG.normal(size=(E, F)).astype(np.float32)
INDEX = RNG.integers(0, S - 3, size=E).astype(np.int64)  # segments S-3 .. S-1 stay empty
W = RNG.normal(size=(S, F)).astype(np.float32)  # cotangent weights for per-segment outputs
WE = RNG.normal(size=(E, F)).astype(np.float32)  # ... and for per-entry outputs


def t_broadcast(index, src, dim):
    """torch_scatter.utils.broadcast."""
    dim = dim % src.dim()
    if index.dim() == 1:
        for _ in range(dim):
            index = index.unsqueeze(0)
    for _ in range(index.dim(), src.dim()):
        index = index.unsqueeze(-1)
    return index.expand(src.size())


def _size(src, dim, n):
    size = list(src.shape)
    size[dim] = n
    return size


def t_sum(src, index, dim, n):
    idx = t_broadcast(index, src, dim)
    return torch.zeros(_size(src, dim, n), dtype=src.dtype).scatter_add(dim, idx, src)


def t_mean(src, index, dim, n):
    idx = t_broadcast(index, src, dim)
    total = t_sum(src, index, dim, n)
    count = t_sum(torch.ones_like(src), index, dim, n).clamp(min=1)
    del idx
    return total / count


def t_mul(src, index, dim, n):
    idx = t_broadcast(index, src, dim)
    return torch.ones(_size(src, dim, n), dtype=src.dtype).scatter_reduce(dim, idx, src, "prod")


def t_arg(src, index, dim, n, kind):
    """(values, arg) with torch_scatter's forward (first winner, sentinel) and backward."""
    idx = t_broadcast(index, src, dim)
    best = torch.zeros(_size(src, dim, n), dtype=src.dtype).scatter_reduce(
        dim, idx, src.detach(), "amax" if kind == "max" else "amin", include_self=False
    )
    m = src.shape[dim]
    shape = [1] * src.dim()
    shape[dim] = m
    pos = torch.arange(m).view(shape).expand(src.shape)
    cand = torch.where(src.detach() == best.gather(dim, idx), pos, torch.full_like(pos, m))
    arg = torch.full(best.shape, m).scatter_reduce(dim, idx, cand, "amin")
    picked = src.gather(dim, arg.clamp(max=m - 1))
    return torch.where(arg < m, picked, torch.zeros_like(picked)), arg


def t_std(src, index, dim, n, unbiased=True):
    """torch_scatter/composite/std.py."""
    count = t_sum(torch.ones_like(src), index, dim, n)
    mean = t_sum(src, index, dim, n) / count.clamp(1)
    idx = t_broadcast(index, src, dim)
    var = t_sum((src - mean.gather(dim, idx)) ** 2, index, dim, n)
    d = (count - 1).clamp(1) if unbiased else count.clamp(1)
    return (var / d).sqrt()


def t_logsumexp(src, index, dim, n, eps=1e-12):
    """torch_scatter/composite/logsumexp.py (empty segments -> 0)."""
    idx = t_broadcast(index, src, dim)
    m = torch.full(_size(src, dim, n), float("-inf")).scatter_reduce(dim, idx, src.detach(), "amax")
    z = src - m.gather(dim, idx)
    s = t_sum(z.exp(), index, dim, n)
    return torch.nan_to_num((s + eps).log() + m, neginf=0.0)


def t_softmax(src, index, dim, n, log=False, eps=1e-12):
    """torch_scatter/composite/softmax.py."""
    idx = t_broadcast(index, src, dim)
    m = torch.full(_size(src, dim, n), float("-inf")).scatter_reduce(dim, idx, src.detach(), "amax")
    z = src - m.gather(dim, idx)
    s = t_sum(z.exp(), index, dim, n)
    if log:
        return z - (s + eps).log().gather(dim, idx)
    return z.exp() / s.gather(dim, idx)


CASES = {
    "sum": (lambda s, i: seg.scatter_sum(s, i, 0, dim_size=S), lambda s, i: t_sum(s, i, 0, S)),
    "mean": (lambda s, i: seg.scatter_mean(s, i, 0, dim_size=S), lambda s, i: t_mean(s, i, 0, S)),
    "mul": (lambda s, i: seg.scatter_mul(s, i, 0, dim_size=S), lambda s, i: t_mul(s, i, 0, S)),
    "max": (
        lambda s, i: seg.scatter_max(s, i, 0, dim_size=S)[0],
        lambda s, i: t_arg(s, i, 0, S, "max")[0],
    ),
    "min": (
        lambda s, i: seg.scatter_min(s, i, 0, dim_size=S)[0],
        lambda s, i: t_arg(s, i, 0, S, "min")[0],
    ),
    "std": (lambda s, i: seg.scatter_std(s, i, 0, dim_size=S), lambda s, i: t_std(s, i, 0, S)),
    "std_biased": (
        lambda s, i: seg.scatter_std(s, i, 0, dim_size=S, unbiased=False),
        lambda s, i: t_std(s, i, 0, S, unbiased=False),
    ),
    "logsumexp": (
        lambda s, i: seg.scatter_logsumexp(s, i, 0, dim_size=S),
        lambda s, i: t_logsumexp(s, i, 0, S),
    ),
    "softmax": (
        lambda s, i: seg.scatter_softmax(s, i, 0, dim_size=S),
        lambda s, i: t_softmax(s, i, 0, S),
    ),
    "log_softmax": (
        lambda s, i: seg.scatter_log_softmax(s, i, 0, dim_size=S),
        lambda s, i: t_softmax(s, i, 0, S, log=True),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch(name):
    jfn, tfn = CASES[name]
    src = SRC
    got = jfn(jnp.asarray(src), jnp.asarray(INDEX, jnp.int32))
    ts = torch.tensor(src, requires_grad=True)
    want = tfn(ts, torch.tensor(INDEX))
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-5, atol=1e-5)
    w = WE if want.shape[0] == E else W
    (want * torch.tensor(w)).sum().backward()
    g = jax.grad(lambda s: jnp.sum(jfn(s, jnp.asarray(INDEX, jnp.int32)) * w))(jnp.asarray(src))
    tg = ts.grad.numpy()
    finite = np.isfinite(tg)  # torch's NaN gradients (std at zero variance) are jgather's 0
    np.testing.assert_allclose(np.asarray(g)[finite], tg[finite], rtol=1e-4, atol=1e-5)
    assert np.isfinite(np.asarray(g)).all()


def test_argmax_matches_torch_restatement():
    for kind, fn in (("max", seg.scatter_max), ("min", seg.scatter_min)):
        values, arg = fn(jnp.asarray(SRC), jnp.asarray(INDEX, jnp.int32), 0, dim_size=S)
        tv, ta = t_arg(torch.tensor(SRC), torch.tensor(INDEX), 0, S, kind)
        np.testing.assert_array_equal(np.asarray(values), tv.numpy())
        np.testing.assert_array_equal(np.asarray(arg), ta.numpy())


def test_batched_dim1_matches_torch():
    src = RNG.normal(size=(2, E, F)).astype(np.float32)
    got = seg.scatter_mean(jnp.asarray(src), jnp.asarray(INDEX, jnp.int32), 1, dim_size=S)
    want = t_mean(torch.tensor(src), torch.tensor(INDEX), 1, S)
    np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_segment_csr_matches_torch_segment_reduce(reduce):
    lengths = np.array([3, 5, 1, 7, 4, 20], np.int64)  # no empty segment: torch gives NaN/-inf
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    ts = torch.tensor(SRC, requires_grad=True)
    want = torch.segment_reduce(ts, reduce, lengths=torch.tensor(lengths), axis=0)
    got = seg.segment_csr(jnp.asarray(SRC), jnp.asarray(indptr), reduce=reduce)
    np.testing.assert_allclose(np.asarray(got), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    w = W[: len(lengths)]
    (want * torch.tensor(w)).sum().backward()
    g = jax.grad(lambda s: jnp.sum(seg.segment_csr(s, jnp.asarray(indptr), reduce=reduce) * w))(
        jnp.asarray(SRC)
    )
    np.testing.assert_allclose(np.asarray(g), ts.grad.numpy(), rtol=1e-5, atol=1e-6)
    coo = np.repeat(np.arange(len(lengths)), lengths).astype(np.int32)
    np.testing.assert_allclose(
        np.asarray(seg.segment_coo(jnp.asarray(SRC), jnp.asarray(coo), reduce=reduce)),
        want.detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_integer_mean_floors_as_torch():
    src = RNG.integers(-9, 9, size=(E,)).astype(np.int32)
    got = seg.scatter_mean(jnp.asarray(src), jnp.asarray(INDEX, jnp.int32), dim_size=S)
    total = torch.zeros(S, dtype=torch.int32).scatter_add(0, torch.tensor(INDEX), torch.tensor(src))
    count = torch.zeros(S, dtype=torch.int32).scatter_add(
        0, torch.tensor(INDEX), torch.ones(E, dtype=torch.int32)
    )
    want = torch.div(total, count.clamp(min=1), rounding_mode="floor")
    np.testing.assert_array_equal(np.asarray(got), want.numpy())


def test_integer_csr_and_coo_means_truncate_as_the_kernel():
    """torch_scatter's segment kernels end with ``val / count`` in C++ (towards zero);
    re-stated with torch.div(rounding_mode='trunc'); coo's out= is added, not counted."""
    src = RNG.integers(-9, 9, size=(E, F)).astype(np.int32)
    index = np.sort(INDEX)
    indptr = np.searchsorted(index, np.arange(S + 1)).astype(np.int64)
    out = RNG.integers(-9, 9, size=(S, F)).astype(np.int32)
    ts, ti = torch.tensor(src), torch.tensor(index)
    total = t_sum(ts, ti, 0, S)
    count = t_sum(torch.ones_like(ts), ti, 0, S).clamp(min=1)
    want = torch.div(total, count, rounding_mode="trunc").numpy()
    want_out = torch.div(total + torch.tensor(out), count, rounding_mode="trunc").numpy()
    assert (want != torch.div(total, count, rounding_mode="floor").numpy()).any()
    np.testing.assert_array_equal(seg.segment_csr(src, indptr, reduce="mean"), want)
    np.testing.assert_array_equal(seg.segment_mean_coo(src, index, dim_size=S), want)
    np.testing.assert_array_equal(seg.segment_mean_coo(src, index, out=out), want_out)


class _ScatterMul(torch.autograd.Function):
    """torch_scatter's ScatterMul (csrc/scatter.cpp): forward the product into ones; backward
    ``gather(grad_out * out) / src`` with NaN set to 0, from saved src and out, so that a
    double backward differentiates that formula (through this Function again for out)."""

    @staticmethod
    def forward(ctx, src, index):
        out = torch.ones(S, dtype=src.dtype).scatter_reduce(0, index, src, "prod")
        ctx.save_for_backward(src, index, out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        src, index, out = ctx.saved_tensors
        grad_in = (grad_out * out).gather(0, index) / src
        return grad_in.masked_fill(grad_in.isnan(), 0), None


def test_mul_second_derivative_matches_torch_scatters_rule(x64_on):
    """jax.grad of jax.grad of scatter_mul against torch_scatter's autograd rule, re-stated,
    on non-zero values with repeated indices (at zeros torch_scatter's first derivative is 0
    and jgather's the product of the others, a documented difference). Segments 0 and 1
    hold s = [2, 3, 4, 5] alone, where d/ds sum(d/ds sum(y**3)) is [648, 468, 6600, 5520]
    (by hand: 9 y^3 / s_k * sum_j 1 / s_j - 3 y^3 / s_k^2 within a segment)."""
    src = np.abs(RNG.normal(size=E)) + 0.5
    src[:4] = [2.0, 3.0, 4.0, 5.0]
    index = np.where(INDEX < 2, INDEX + 2, INDEX)
    index[:4] = [0, 0, 1, 1]
    ts = torch.tensor(src, requires_grad=True)
    y = _ScatterMul.apply(ts, torch.tensor(index))
    (g,) = torch.autograd.grad((y**3).sum(), ts, create_graph=True)
    (want,) = torch.autograd.grad(g.sum(), ts)
    inner = lambda s: jnp.sum(seg.scatter_mul(s, index, 0, dim_size=S) ** 3)
    got = jax.jit(jax.grad(lambda s: jnp.sum(jax.grad(inner)(s))))(src)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10)
    np.testing.assert_allclose(got[:4], [648.0, 468.0, 6600.0, 5520.0], rtol=1e-12)


def test_float_means_divide_as_torch_scatter_bit_for_bit():
    """Means of F = 3 features divide each by its count (XLA would multiply by 1 / count,
    last bit off) and, in the segment kernels, round a float16 sum to float16 before the
    division (c10::Half's operator/), both re-stated in torch."""
    rng = np.random.default_rng(2)
    src = (rng.normal(size=(3000, F)) * 10).astype(np.float32)
    index = np.sort(rng.integers(0, 500, size=3000))
    ts, ti = torch.tensor(src), torch.tensor(index)
    got = seg.scatter_mean(src, index, 0, dim_size=500)
    np.testing.assert_array_equal(np.asarray(got), t_mean(ts, ti, 0, 500).numpy())
    half = src.astype(np.float16)
    total = t_sum(torch.tensor(half).float(), ti, 0, 500)  # float32 sums, in index order
    count = t_sum(torch.ones(3000, F), ti, 0, 500).clamp(min=1)
    want = (total.half().float() / count).half().numpy()
    np.testing.assert_array_equal(np.asarray(seg.segment_mean_coo(half, index, dim_size=500)), want)
