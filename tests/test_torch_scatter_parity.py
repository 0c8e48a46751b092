"""jgather.segment against torch_scatter itself (CPU build). Skipped without torch_scatter.

tests/test_segment_torch.py compares with torch-native re-statements of torch_scatter; this
module calls the compiled extension: values, arg outputs (argmax/argmin), dtypes and
gradients over the same cases (E = 40 entries of F = 3 features into S = 12 segments, the last
three empty), the batched ``dim=1`` mean, integer means, CSR and COO reductions and gathers,
empty inputs, and ``out=`` (torch_scatter writes into ``out``; it gets a copy here, jgather
returns the result). Where jgather differs on purpose (porting guide's table), the test
asserts jgather's documented behaviour next to torch_scatter's.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather.segment as seg

torch = pytest.importorskip("torch")
torch_scatter = pytest.importorskip("torch_scatter")

RNG = np.random.default_rng(0)
E, F, S = 40, 3, 12
SRC = RNG.normal(size=(E, F)).astype(np.float32)
INDEX = RNG.integers(0, S - 3, size=E).astype(np.int64)  # segments S-3 .. S-1 stay empty
W = RNG.normal(size=(S, F)).astype(np.float32)  # cotangent weights for per-segment outputs
WE = RNG.normal(size=(E, F)).astype(np.float32)  # ... and for per-entry outputs
OUT = RNG.normal(size=(S, F)).astype(np.float32)  # an initial out=

# name -> (jgather.segment call, torch_scatter call), both (src, index) -> values.
CASES = {
    "sum": (seg.scatter_sum, torch_scatter.scatter_sum),
    "mean": (seg.scatter_mean, torch_scatter.scatter_mean),
    "mul": (seg.scatter_mul, torch_scatter.scatter_mul),
    "max": (lambda *a, **k: seg.scatter_max(*a, **k)[0], torch_scatter.scatter_max),
    "min": (lambda *a, **k: seg.scatter_min(*a, **k)[0], torch_scatter.scatter_min),
    "std": (seg.scatter_std, torch_scatter.scatter_std),
    "logsumexp": (seg.scatter_logsumexp, torch_scatter.scatter_logsumexp),
    "softmax": (seg.scatter_softmax, torch_scatter.scatter_softmax),
    "log_softmax": (seg.scatter_log_softmax, torch_scatter.scatter_log_softmax),
}
_PER_ENTRY = ("softmax", "log_softmax")  # the rest give one row per segment


def _values(out):
    """torch_scatter's max/min return (values, arg); the rest a tensor."""
    return out[0] if isinstance(out, tuple) else out


def _assert_close(got, want, rtol=1e-6, atol=1e-6):
    got, want = np.asarray(got), want.detach().numpy()
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch_scatter(name):
    jfn, tfn = CASES[name]
    ts = torch.tensor(SRC, requires_grad=True)
    kwargs = {} if name in _PER_ENTRY else {"dim_size": S}
    want = _values(tfn(ts, torch.tensor(INDEX), 0, **kwargs))
    index = jnp.asarray(INDEX, jnp.int32)
    got = jfn(jnp.asarray(SRC), index, 0, **kwargs)
    _assert_close(got, want)
    w = WE if name in _PER_ENTRY else W
    (want * torch.tensor(w)).sum().backward()
    g = np.asarray(jax.grad(lambda s: jnp.sum(jfn(s, index, 0, **kwargs) * w))(jnp.asarray(SRC)))
    tg = ts.grad.numpy()
    finite = np.isfinite(tg)
    if name == "std":
        # Porting guide: scatter_std's gradient is 0 where the deviation is 0 (torch_scatter:
        # NaN from sqrt at 0, here the one-entry segments).
        assert (g[~finite] == 0).all()
    else:
        assert finite.all()
    np.testing.assert_allclose(g[finite], tg[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["max", "min"])
def test_arg_outputs_match_torch_scatter(kind):
    jfn, tfn = getattr(seg, f"scatter_{kind}"), getattr(torch_scatter, f"scatter_{kind}")
    values, arg = jfn(jnp.asarray(SRC), jnp.asarray(INDEX), 0, dim_size=S)
    tv, ta = tfn(torch.tensor(SRC), torch.tensor(INDEX), 0, dim_size=S)
    np.testing.assert_array_equal(np.asarray(values), tv.numpy())
    # The sentinel of an empty segment is src.shape[dim] in both; int64 with x64 off in torch,
    # jgather's index dtype (int32 with x64 off, porting guide: "Index dtypes").
    np.testing.assert_array_equal(np.asarray(arg), ta.numpy())


def test_x64_dtypes_match_torch_scatter(x64_on):
    """With x64 on, float64 values and int64 args are torch_scatter's dtypes exactly."""
    src = SRC.astype(np.float64)
    for name, (jfn, tfn) in CASES.items():
        kwargs = {} if name in _PER_ENTRY else {"dim_size": S}
        want = _values(tfn(torch.tensor(src), torch.tensor(INDEX), 0, **kwargs))
        _assert_close(jfn(jnp.asarray(src), jnp.asarray(INDEX), 0, **kwargs), want, 1e-12, 1e-12)
    for kind in ("max", "min"):
        _, arg = getattr(seg, f"scatter_{kind}")(jnp.asarray(src), jnp.asarray(INDEX), 0)
        _, ta = getattr(torch_scatter, f"scatter_{kind}")(torch.tensor(src), torch.tensor(INDEX), 0)
        assert np.asarray(arg).dtype == ta.numpy().dtype == np.int64
        np.testing.assert_array_equal(np.asarray(arg), ta.numpy())


def test_batched_dim1_matches_torch_scatter():
    src = RNG.normal(size=(2, E, F)).astype(np.float32)
    got = seg.scatter_mean(jnp.asarray(src), jnp.asarray(INDEX), 1, dim_size=S)
    want = torch_scatter.scatter_mean(torch.tensor(src), torch.tensor(INDEX), 1, dim_size=S)
    _assert_close(got, want)


def test_integer_mean_floors_as_torch_scatter():
    src = RNG.integers(-9, 9, size=(E,)).astype(np.int32)
    got = seg.scatter_mean(jnp.asarray(src), jnp.asarray(INDEX), dim_size=S)
    want = torch_scatter.scatter_mean(torch.tensor(src), torch.tensor(INDEX), dim_size=S)
    np.testing.assert_array_equal(np.asarray(got), want.numpy())


def test_integer_csr_and_coo_means_truncate_as_torch_scatter():
    """The segment kernels divide in C++ (towards zero); scatter_mean floors (above)."""
    src = RNG.integers(-9, 9, size=(E, F)).astype(np.int64)
    index = np.sort(INDEX)
    indptr = np.searchsorted(index, np.arange(S + 1))
    out = RNG.integers(-9, 9, size=(S, F)).astype(np.int64)
    ts, ti = torch.tensor(src), torch.tensor(index)
    with jax.enable_x64(True):
        for got, want in (
            (
                seg.segment_csr(src, indptr, reduce="mean"),
                torch_scatter.segment_csr(ts, torch.tensor(indptr), reduce="mean"),
            ),
            (
                seg.segment_mean_coo(src, index, dim_size=S),
                torch_scatter.segment_mean_coo(ts, ti, dim_size=S),
            ),
            (
                seg.segment_mean_coo(src, index, out=out),
                torch_scatter.segment_mean_coo(ts, ti, torch.tensor(out)),
            ),
        ):
            np.testing.assert_array_equal(np.asarray(got), want.numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_float_means_match_torch_scatter_bit_for_bit(dtype):
    """F = 3 features: each mean divides by its count; the segment kernels round a
    half-precision sum to its dtype before dividing."""
    rng = np.random.default_rng(2)
    t = (torch.tensor(rng.normal(size=(3000, F)).astype(np.float32)) * 10).to(getattr(torch, dtype))
    src = jnp.asarray(t.float().numpy()).astype(dtype)
    index = np.sort(rng.integers(0, 500, size=3000))
    indptr = np.searchsorted(index, np.arange(501))
    out = torch.tensor(rng.normal(size=(500, F)).astype(np.float32)).to(t.dtype)
    ti = torch.tensor(index)
    pairs = [
        (seg.segment_csr(src, indptr, reduce="mean"), torch_scatter.segment_csr(t, torch.tensor(indptr), reduce="mean")),
        (seg.segment_mean_coo(src, index, out=jnp.asarray(out.float().numpy()).astype(dtype)), torch_scatter.segment_mean_coo(t, ti, out.clone())),
    ]  # fmt: skip
    if dtype == "float32":  # scatter_mean of half precision sums in float32 (porting guide)
        pairs.append(
            (
                seg.scatter_mean(src, index, 0, dim_size=500),
                torch_scatter.scatter_mean(t, ti, 0, dim_size=500),
            )
        )
    for got, want in pairs:
        np.testing.assert_array_equal(np.asarray(got).astype(np.float32), want.float().numpy())


def test_mul_second_derivative_matches_torch_scatter(x64_on):
    """Double backward through torch_scatter's ScatterMul on non-zero values: segments 0 and
    1 hold s = [2, 3, 4, 5] alone (d/ds sum(d/ds sum(y**3)) = [648, 468, 6600, 5520])."""
    src = np.abs(RNG.normal(size=E)) + 0.5
    src[:4] = [2.0, 3.0, 4.0, 5.0]
    index = np.where(INDEX < 2, INDEX + 2, INDEX)
    index[:4] = [0, 0, 1, 1]
    ts = torch.tensor(src, requires_grad=True)
    y = torch_scatter.scatter_mul(ts, torch.tensor(index), 0, dim_size=S)
    (g,) = torch.autograd.grad((y**3).sum(), ts, create_graph=True)
    (want,) = torch.autograd.grad(g.sum(), ts)
    inner = lambda s: jnp.sum(seg.scatter_mul(s, index, 0, dim_size=S) ** 3)
    got = jax.jit(jax.grad(lambda s: jnp.sum(jax.grad(inner)(s))))(src)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10)
    np.testing.assert_allclose(got[:4], [648.0, 468.0, 6600.0, 5520.0], rtol=1e-12)


@pytest.mark.parametrize("name", ["scatter_max", "scatter_min", "segment_max_csr"])
def test_complex_max_and_min_raise_as_in_torch_scatter(name):
    """torch_scatter's max/min kernels have no complex dtypes; jgather raises TypeError."""
    src = np.ones((4, 2), np.complex64)
    args = (np.array([0, 2, 4]),) if name.endswith("csr") else (np.array([0, 0, 1, 1]), 0)
    t_args = (torch.tensor(args[0]), *args[1:])
    with pytest.raises(RuntimeError, match="not implemented for 'ComplexFloat'"):
        getattr(torch_scatter, name)(torch.tensor(src), *t_args)
    with pytest.raises(TypeError, match=f"^{name}: reduce="):
        getattr(seg, name)(src, *args)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_csr_and_coo_match_torch_scatter(reduce):
    lengths = np.array([3, 5, 0, 7, 4, 21], np.int64)  # one empty segment
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    coo = np.repeat(np.arange(len(lengths)), lengths)
    ts = torch.tensor(SRC, requires_grad=True)
    want = torch_scatter.segment_csr(ts, torch.tensor(indptr), reduce=reduce)
    got = seg.segment_csr(jnp.asarray(SRC), jnp.asarray(indptr), reduce=reduce)
    _assert_close(got, want)
    w = W[: len(lengths)]
    (want * torch.tensor(w)).sum().backward()
    g = jax.grad(lambda s: jnp.sum(seg.segment_csr(s, jnp.asarray(indptr), reduce=reduce) * w))
    np.testing.assert_allclose(np.asarray(g(jnp.asarray(SRC))), ts.grad.numpy(), 1e-5, 1e-6)
    want = torch_scatter.segment_coo(torch.tensor(SRC), torch.tensor(coo), reduce=reduce)
    _assert_close(seg.segment_coo(jnp.asarray(SRC), jnp.asarray(coo), reduce=reduce), want)
    if reduce in ("max", "min"):
        for form, ptr in (("csr", indptr), ("coo", coo)):
            v, a = getattr(seg, f"segment_{reduce}_{form}")(jnp.asarray(SRC), jnp.asarray(ptr))
            tv, ta = getattr(torch_scatter, f"segment_{reduce}_{form}")(
                torch.tensor(SRC), torch.tensor(ptr)
            )
            np.testing.assert_array_equal(np.asarray(v), tv.numpy())
            np.testing.assert_array_equal(np.asarray(a), ta.numpy())


def test_gathers_match_torch_scatter():
    per_segment = W[:6]
    lengths = np.array([3, 5, 0, 7, 4, 21], np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    coo = np.repeat(np.arange(len(lengths)), lengths)
    want = torch_scatter.gather_csr(torch.tensor(per_segment), torch.tensor(indptr))
    _assert_close(seg.gather_csr(jnp.asarray(per_segment), jnp.asarray(indptr)), want, 0, 0)
    want = torch_scatter.gather_coo(torch.tensor(per_segment), torch.tensor(coo))
    _assert_close(seg.gather_coo(jnp.asarray(per_segment), jnp.asarray(coo)), want, 0, 0)


@pytest.mark.parametrize("name", ["sum", "mean", "mul", "max", "min", "std", "logsumexp"])
def test_out_matches_torch_scatter(name):
    """out= is the initial array: torch_scatter writes into (a copy of) it, jgather returns."""
    jfn, tfn = CASES[name]
    want = _values(tfn(torch.tensor(SRC), torch.tensor(INDEX), 0, out=torch.tensor(OUT)))
    got = jfn(jnp.asarray(SRC), jnp.asarray(INDEX), 0, out=jnp.asarray(OUT))
    if name == "logsumexp":  # the empty segments: test_logsumexp_out_on_empty_segments_...
        got, want = got[: S - 3], want[: S - 3]
    _assert_close(got, want, rtol=1e-5, atol=1e-6)  # logsumexp: out takes part in the shift


def test_logsumexp_out_on_empty_segments_is_the_documented_difference():
    """With out=, an empty segment's logsumexp is that of out alone: out's value (the
    porting guide's difference); torch_scatter gives 0 (exp(out - -inf) is inf, then NaN,
    then nan_to_num)."""
    want = torch_scatter.scatter_logsumexp(
        torch.tensor(SRC), torch.tensor(INDEX), 0, out=torch.tensor(OUT)
    )
    got = seg.scatter_logsumexp(jnp.asarray(SRC), jnp.asarray(INDEX), 0, out=jnp.asarray(OUT))
    np.testing.assert_array_equal(want[S - 3 :].numpy(), 0)
    np.testing.assert_allclose(np.asarray(got[S - 3 :]), OUT[S - 3 :], rtol=1e-6, atol=1e-6)


def test_empty_inputs_match_torch_scatter():
    src, index = np.zeros((0, F), np.float32), np.zeros((0,), np.int64)
    for name, (jfn, tfn) in CASES.items():
        if name == "mul":  # test_mul_of_an_empty_src_matches_torch_scatter
            continue
        kwargs = {} if name in _PER_ENTRY else {"dim_size": 4}
        want = _values(tfn(torch.tensor(src), torch.tensor(index), 0, **kwargs))
        _assert_close(jfn(jnp.asarray(src), jnp.asarray(index), 0, **kwargs), want)
    for kind in ("max", "min"):  # the arg sentinel is src.shape[0] = 0
        _, arg = getattr(seg, f"scatter_{kind}")(jnp.asarray(src), jnp.asarray(index), 0, None, 4)
        _, ta = getattr(torch_scatter, f"scatter_{kind}")(
            torch.tensor(src), torch.tensor(index), 0, None, 4
        )
        np.testing.assert_array_equal(np.asarray(arg), ta.numpy())
    indptr = np.zeros((1,), np.int64)  # no segment
    for reduce in ("sum", "mean", "max", "min"):
        want = torch_scatter.segment_csr(torch.tensor(src), torch.tensor(indptr), reduce=reduce)
        _assert_close(seg.segment_csr(jnp.asarray(src), jnp.asarray(indptr), reduce=reduce), want)


@pytest.mark.parametrize("unbiased", [True, False])
def test_std_denominator_matches_torch_scatter(x64_on, unbiased):
    src = SRC.astype(np.float64)
    want = torch_scatter.scatter_std(torch.tensor(src), torch.tensor(INDEX), 0, unbiased=unbiased)
    got = seg.scatter_std(jnp.asarray(src), jnp.asarray(INDEX), 0, unbiased=unbiased)
    _assert_close(got, want, 1e-12, 1e-12)


def test_mul_of_an_empty_src_matches_torch_scatter():
    src, index = np.zeros((0, F), np.float32), np.zeros((0,), np.int64)
    want = torch_scatter.scatter_mul(torch.tensor(src), torch.tensor(index), 0, dim_size=4)
    _assert_close(seg.scatter_mul(jnp.asarray(src), jnp.asarray(index), 0, dim_size=4), want)
