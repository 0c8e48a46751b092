"""Reduced-precision floats (bf16, fp16, float8) accumulate in float32 and round once.

Every sum and mean reduction (``scatter_add``, ``scatter_reduce`` 'sum'/'mean',
``scatter(reduce='add')``, and ``jgather.segment``'s sums and means) and the gradients of
``gather``, ``take_along_dim``, ``index_select``, ``segment.gather_coo`` and
``segment.gather_csr`` (a scatter-add of the cotangent) add in float32 and round once,
as torch does on CPU. The reference here is NumPy in float32 (or float64), rounded once to the
dtype; torch's own results are compared where torch is installed (skipped otherwise).
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from pipelines import USERS_PIPELINE

import jgather
from jgather import segment

LOW = [jnp.bfloat16, jnp.float16]
N = 3000  # ones: bf16 alone would stop at 256, fp16 at 2048


def _sum_ref(base, keys, values, include_self=True, mean=False, count_self=None):
    """NumPy float64 per-bin sums (means) of ``values`` into ``base``, rounded once.

    ``count_self=False``: ``base`` is added but not counted (torch_scatter's ``out=``).
    """
    dtype = base.dtype
    count_self = include_self if count_self is None else count_self
    total = base.astype(np.float64) if include_self else np.zeros(base.shape)
    count = np.ones(base.shape) if count_self else np.zeros(base.shape)
    np.add.at(total, keys, values.astype(np.float64))
    np.add.at(count, keys, 1)
    out = np.where(count > 0, total / np.maximum(count, 1), total) if mean else total
    out = np.where(count > 0, out, base.astype(np.float64))
    if not count_self:
        out = total / np.maximum(count, 1) if mean else total
    return out.astype(np.float32).astype(dtype)


def _cases(dtype):
    """Every sum/mean entry point on (base, keys, values): name -> function."""
    return {
        "scatter_add": lambda b, k, v: jgather.scatter_add(b, 0, k, v),
        "scatter_add_reduce": lambda b, k, v: jgather.scatter(b, 0, k, v, reduce="add"),
        "sum": lambda b, k, v: jgather.scatter_reduce(b, 0, k, v, "sum"),
        "sum_excl": lambda b, k, v: jgather.scatter_reduce(b, 0, k, v, "sum", include_self=False),
        "mean": lambda b, k, v: jgather.scatter_reduce(b, 0, k, v, "mean"),
        "mean_excl": lambda b, k, v: jgather.scatter_reduce(b, 0, k, v, "mean", include_self=False),
        "segment.scatter_sum": lambda b, k, v: segment.scatter_sum(v, k, dim=0, out=b),
        "segment.scatter_mean": lambda b, k, v: segment.scatter_mean(v, k, dim=0, out=b),
        "segment.segment_sum_coo": lambda b, k, v: _sorted(segment.segment_sum_coo, b, k, v),
        "segment.segment_mean_coo": lambda b, k, v: _sorted(segment.segment_mean_coo, b, k, v),
        # torch's index family: its CPU kernels add in the input's dtype; jgather does not.
        "index_add": lambda b, k, v: jgather.index_add(b, 0, k, v),
        "index_reduce_mean": lambda b, k, v: jgather.index_reduce(b, 0, k, v, "mean"),
        "index_reduce_mean_excl": lambda b, k, v: jgather.index_reduce(
            b, 0, k, v, "mean", include_self=False
        ),
        "index_put_accumulate": lambda b, k, v: jgather.index_put(b, (k,), v, True),
        "put_accumulate": lambda b, k, v: jgather.put(b, k, v, True),
    }


def _sorted(f, base, keys, values):
    order = jnp.argsort(keys, stable=True)
    return f(values[order], keys[order], out=base)


_REF_KW = {
    "scatter_add": {},
    "scatter_add_reduce": {},
    "sum": {},
    "sum_excl": {"include_self": False},
    "mean": {"mean": True},
    "mean_excl": {"mean": True, "include_self": False},
    "segment.scatter_sum": {},
    "segment.scatter_mean": {"mean": True, "count_self": False},
    "segment.segment_sum_coo": {},
    "segment.segment_mean_coo": {"mean": True, "count_self": False},
    "index_add": {},
    "index_reduce_mean": {"mean": True},
    "index_reduce_mean_excl": {"mean": True, "include_self": False},
    "index_put_accumulate": {},
    "put_accumulate": {},
}


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
def test_thousands_of_ones(dtype):
    """The issue's cases: 1000 ones sum to 1000; the mean of 3000 ones is 1.0."""
    base = jnp.zeros(1, dtype)
    keys = jnp.zeros(N, jnp.int32)
    ones = jnp.ones(N, dtype)
    out = jax.jit(lambda b, k, v: {n: f(b, k, v) for n, f in _cases(dtype).items()})(
        base, keys, ones
    )
    np.testing.assert_array_equal(
        jgather.scatter_add(base, 0, keys[:1000], ones[:1000]), np.array([1000], dtype)
    )
    expected_of = {
        "mean": float(np.float32(N / (N + 1)).astype(dtype)),  # the zero of input counts
        "mean_excl": 1.0,
        "index_reduce_mean": float(np.float32(N / (N + 1)).astype(dtype)),
        "index_reduce_mean_excl": 1.0,
        "segment.scatter_mean": 1.0,  # out= is added, not counted
        "segment.segment_mean_coo": 1.0,
    }
    for name, value in out.items():
        expected = expected_of.get(name, float(np.asarray(N, dtype)))
        np.testing.assert_array_equal(np.asarray(value, np.float32), [expected], err_msg=name)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
def test_random_data_matches_a_float32_sum_rounded_once(dtype):
    rng = np.random.default_rng(0)
    base = rng.standard_normal(7).astype(dtype)
    keys = rng.integers(0, 7, 5000)
    values = rng.standard_normal(5000).astype(dtype)
    every_sum = lambda b, k, v: {n: f(b, k, v) for n, f in _cases(dtype).items()}
    args = (base, keys.astype(np.int32), values)
    out = jax.jit(every_sum)(*args)
    # The same bits from XLA's default fusion emitters, which users' CPUs run, as from the
    # session's (tests/pipelines.py): float32 accumulation order is the program's, not theirs.
    users = jax.jit(every_sum, compiler_options=USERS_PIPELINE)(*args)
    jax.tree.map(np.testing.assert_array_equal, users, out)
    eps = float(jnp.finfo(dtype).eps)
    for name, value in out.items():
        expected = _sum_ref(base, keys, values, **_REF_KW[name]).astype(np.float64)
        got = np.asarray(value).astype(np.float64)
        # float32 summation order differs from float64 only far below one ulp of the dtype;
        # the single rounding may then land one ulp away.
        np.testing.assert_allclose(got, expected, rtol=eps, atol=eps, err_msg=name)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
def test_against_torch(dtype):
    torch = pytest.importorskip("torch")
    tdtype = {np.dtype(jnp.bfloat16): torch.bfloat16, np.dtype(jnp.float16): torch.float16}[
        np.dtype(dtype)
    ]
    rng = np.random.default_rng(1)
    base = rng.standard_normal(5).astype(np.float32)
    keys = rng.integers(0, 5, 4000)
    values = rng.standard_normal(4000).astype(np.float32)
    tb = torch.tensor(base).to(tdtype)
    tk = torch.tensor(keys)
    tv = torch.tensor(values).to(tdtype)
    b = jnp.asarray(tb.float().numpy()).astype(dtype)
    v = jnp.asarray(tv.float().numpy()).astype(dtype)
    k = jnp.asarray(keys, jnp.int32)
    eps = float(jnp.finfo(dtype).eps)
    pairs = {
        "sum": (tb.scatter_add(0, tk, tv), jgather.scatter_add(b, 0, k, v)),
        "sum_excl": (
            tb.scatter_reduce(0, tk, tv, "sum", include_self=False),
            jgather.scatter_reduce(b, 0, k, v, "sum", include_self=False),
        ),
        "mean": (
            tb.scatter_reduce(0, tk, tv, "mean"),
            jgather.scatter_reduce(b, 0, k, v, "mean"),
        ),
    }
    for name, (expected, got) in pairs.items():
        np.testing.assert_allclose(
            np.asarray(got, np.float32), expected.float().numpy(), rtol=eps, atol=eps, err_msg=name
        )
    # The ones: torch gives exactly N and 1.0.
    ones = torch.ones(N, dtype=tdtype)
    zeros = torch.zeros(N, dtype=torch.long)
    expected = torch.zeros(1, dtype=tdtype).scatter_add(0, zeros, ones).float().numpy()
    got = jgather.scatter_add(jnp.zeros(1, dtype), 0, jnp.zeros(N, jnp.int32), jnp.ones(N, dtype))
    np.testing.assert_array_equal(np.asarray(got, np.float32), expected)


@pytest.mark.parametrize("dtype", [*LOW, jnp.float8_e4m3fn, jnp.float8_e5m2])
def test_gather_family_gradients_accumulate_in_float32(dtype):
    """1000 reads of one element: its gradient is 1000 (bf16 accumulation would give 256)."""
    reads = 400 if jnp.finfo(dtype).max < 1000 else 1000
    idx = jnp.zeros(reads, jnp.int32)
    fns = {
        "gather": lambda x: jgather.gather(x, 0, idx),
        "take_along_dim": lambda x: jgather.take_along_dim(x, idx, 0),
        "index_select": lambda x: jgather.index_select(x, 0, idx),
        "segment.gather_coo": lambda x: segment.gather_coo(x, idx),
        "take": lambda x: jgather.take(x, idx),
        "embedding": lambda x: jgather.embedding(idx, x[:, None]),
        "embedding_bag": lambda x: jgather.embedding_bag(
            idx, x[:, None], jnp.array([0]), mode="sum"
        ),
        "segment.gather_csr": lambda x: segment.gather_csr(x, np.array([0, reads, reads, reads])),
    }

    def grads(x):
        return {
            n: jax.grad(lambda x, f=f: f(x).astype(jnp.float32).sum())(x) for n, f in fns.items()
        }

    out = jax.jit(grads)(jnp.zeros(3, dtype))
    expected = np.array([reads, 0, 0], np.float32).astype(dtype)
    for name, g in out.items():
        assert g.dtype == dtype
        np.testing.assert_array_equal(np.asarray(g), expected, err_msg=name)


def test_gather_forward_is_one_gather_and_bit_exact():
    x = (np.arange(64, dtype=np.float32) / 7).astype(ml_dtypes.bfloat16)
    idx = np.random.default_rng(2).integers(0, 64, 200).astype(np.int32)
    fn = jax.jit(lambda x, i: jgather.gather(x, 0, i))
    np.testing.assert_array_equal(np.asarray(fn(x, idx)), x[idx])
    # The program jgather emits (XLA's CPU backend itself may then compute bf16 in f32).
    hlo = fn.lower(x, idx).as_text()
    assert hlo.count('"stablehlo.gather"(') == 1, hlo
    assert "f32" not in hlo, "the forward must not upcast the operand"


@pytest.mark.parametrize(
    "dtype", [jnp.float8_e4m3fn, jnp.float8_e4m3fnuz, jnp.float8_e5m2, jnp.float8_e4m3b11fnuz]
)
def test_float8_amax_amin_without_infinity(dtype):
    """float8 types without inf: the identity is the finite extreme, not a NaN."""
    src = jnp.array([-1.0, 2.0, 3.0], dtype)
    base = jnp.zeros(4, dtype)
    idx = jnp.array([0, 1, 2])
    amax = jgather.scatter_reduce(base, 0, idx, src, "amax", include_self=False)
    amin = jgather.scatter_reduce(base, 0, idx, src, "amin", include_self=False)
    np.testing.assert_array_equal(np.asarray(amax, np.float32), [-1, 2, 3, 0])
    np.testing.assert_array_equal(np.asarray(amin, np.float32), [-1, 2, 3, 0])


@pytest.mark.parametrize("dtype", [jnp.float8_e4m3fn, jnp.float8_e5m2])
def test_float8_sums_accumulate_in_float32_in_both_apis(dtype):
    """64 float8 ones sum to 64 through the torch ops and through jgather.segment (a float8
    running sum would stop at 16 for e4m3fn)."""
    ones, keys = jnp.ones(64, dtype), jnp.zeros(64, jnp.int32)
    results = {
        "scatter_add": jgather.scatter_add(jnp.zeros(1, dtype), 0, keys, ones),
        "segment.scatter_sum": segment.scatter_sum(ones, keys),
        "segment.segment_sum_coo": segment.segment_sum_coo(ones, keys),
        "segment.segment_sum_csr": segment.segment_sum_csr(ones, jnp.array([0, 64])),
    }
    for name, got in results.items():
        np.testing.assert_array_equal(np.asarray(got, np.float32), [64.0], err_msg=name)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
def test_index_family_sums_differ_from_torch_on_purpose(dtype):
    """The porting guide's deliberate difference: torch's CPU index_add, index_put and put
    (accumulate=True) add ones in the input's dtype and stop where one more no longer
    rounds up (256 for bf16, 2048 for fp16); jgather adds in float32 and gets N (rounded
    once to the dtype)."""
    torch = pytest.importorskip("torch")
    tdtype = {np.dtype(jnp.bfloat16): torch.bfloat16, np.dtype(jnp.float16): torch.float16}[
        np.dtype(dtype)
    ]
    stop = 256 if dtype == jnp.bfloat16 else 2048  # 1 + 2**-8 / 1 + 2**-11 round back
    tz, tk = torch.zeros(1, dtype=tdtype), torch.zeros(N, dtype=torch.long)
    tones = torch.ones(N, dtype=tdtype)
    torch_sums = {
        "index_add": torch.index_add(tz, 0, tk, tones),
        "index_put_accumulate": torch.index_put(tz, (tk,), tones, accumulate=True),
        "put_accumulate": torch.put(tz, tk, tones, accumulate=True),
    }
    base, keys, ones = jnp.zeros(1, dtype), jnp.zeros(N, jnp.int32), jnp.ones(N, dtype)
    cases = _cases(dtype)
    for name, want in torch_sums.items():
        assert want.float().item() == stop, name  # torch's rounding, as documented
        got = cases[name](base, keys, ones)
        expected = [float(np.asarray(N, dtype))]
        np.testing.assert_array_equal(np.asarray(got, np.float32), expected, err_msg=name)


@pytest.mark.parametrize("dtype", LOW)
def test_masked_family_gradients_over_broadcast_axes_accumulate_in_float32(dtype):
    """An input (or masked_fill's value) broadcast over N positions gets the sum of N
    cotangents of one, rounded once: N in float32 (bf16 accumulation would stop at 256)."""
    none, every = np.zeros((N, 1), bool), np.ones((N, 1), bool)
    fns = {
        "masked_fill input": lambda x: jgather.masked_fill(x, none, 0.0),
        "masked_fill value": lambda x: jgather.masked_fill(jnp.zeros(1, dtype), every, x[0]),
        "masked_scatter": lambda x: jgather.masked_scatter(x, none, jnp.zeros(N, dtype)),
        "masked_select": lambda x: jgather.masked_select(x, every),
    }
    every_grad = lambda x: {
        n: jax.grad(lambda x, f=f: f(x).astype(jnp.float32).sum())(x) for n, f in fns.items()
    }
    grads = jax.jit(every_grad)(jnp.zeros(1, dtype))
    # In the program itself, not only as XLA:CPU happens to compile it: no sum in dtype.
    jaxpr = str(jax.make_jaxpr(every_grad)(jnp.zeros(1, dtype)))
    low = jnp.dtype(dtype).name.replace("bfloat", "bf").replace("float", "f")
    sums = [line for line in jaxpr.splitlines() if "reduce_sum" in line]
    assert sums and not any(f"{low}[" in line.split("=")[0] for line in sums), sums
    expected = np.array([N], np.float32).astype(dtype)
    for name, g in grads.items():
        assert g.dtype == dtype
        np.testing.assert_array_equal(np.asarray(g), expected, err_msg=name)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
def test_embedding_bag_thousands_of_ones(dtype):
    """embedding_bag adds in float32 and rounds once, as torch's CPU kernel: N ones sum to N
    and average to 1 (tests/test_embedding.py checks torch's rounding of random sums)."""
    ones = jnp.ones((1, 2), dtype)
    index, offsets = jnp.zeros(N, jnp.int32), jnp.array([0, 0])
    f = jax.jit(jgather.embedding_bag, static_argnames="mode")
    np.testing.assert_array_equal(f(index, ones, offsets, mode="sum")[1], np.full(2, N, dtype))
    np.testing.assert_array_equal(f(index, ones, offsets, mode="mean")[1], np.ones(2, dtype))


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dtype", LOW, ids=lambda d: np.dtype(d).name)
def test_both_accumulation_strategies_give_the_same_bits(dtype, include_self):
    """A reduced-precision sum accumulates in a float32 copy of a region no larger than the
    updates, and per group of equal keys otherwise (``jgather._rows.upcasts_region``); both
    add in index order from the operand's value and round once, so they agree bit for bit."""
    from jgather import _rows

    rng = np.random.default_rng(5)
    region = jnp.asarray(rng.standard_normal((16, 3)), dtype)
    keys = jnp.asarray(rng.integers(-2, 18, 400), jnp.int32)  # repeats and dropped keys
    updates = jnp.asarray(rng.standard_normal((400, 3)), dtype)
    base = _rows.take_rows(region, jnp.clip(keys, 0, 15))
    results = []
    for upcast in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_rows, "upcasts_region", lambda *a, upcast=upcast: upcast)
            b = base if include_self and not upcast else None
            results.append(_rows.reduce_rows(region, keys, updates, "sum", include_self, b))
    keep = (np.asarray(keys) >= 0) & (np.asarray(keys) < 16)
    want = _sum_ref(
        np.asarray(region), np.asarray(keys)[keep], np.asarray(updates)[keep], include_self
    )
    np.testing.assert_array_equal(np.asarray(results[0]), np.asarray(results[1]))
    np.testing.assert_array_equal(np.asarray(results[0], np.float32), np.asarray(want, np.float32))
