"""masked_fill, masked_scatter and masked_select against NumPy references and torch.

The references are NumPy's boolean indexing of the broadcast operands (``np.where`` for
masked_fill, an explicit loop over the True positions for masked_scatter, ``x[mask]`` for
masked_select). Each function runs plain, under ``jax.jit`` (mask traced) and under
``jax.vmap``; gradients are compared with the reference's own formula (the cotangent at the
unmasked positions for the input, the cotangent at the True positions in order for
masked_scatter's source). torch's conversion of fill values, where it is not a plain cast,
is checked against torch itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jgather

# (input shape, mask shape): equal, mask broadcast over input, input broadcast over mask,
# both broadcast, 0-d operands.
SHAPES = [
    ((4, 5), (4, 5)),
    ((4, 5), (5,)),
    ((5,), (3, 5)),
    ((3, 1, 5), (4, 1)),
    ((), (2, 3)),
    ((2, 3), ()),
]


def _operands(shape, mask_shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(dtype)
    mask = rng.random(mask_shape) < 0.5
    return x, mask


def _ref_masked_scatter(x, mask, source, drop=False):
    shape = np.broadcast_shapes(x.shape, mask.shape)
    out = np.array(np.broadcast_to(x, shape)).reshape(-1)
    flat, k = np.broadcast_to(mask, shape).reshape(-1), 0
    for p in range(out.size):
        if flat[p]:
            if k < source.size:
                out[p] = source.reshape(-1)[k]
            else:
                assert drop
            k += 1
    return out.reshape(shape)


def _ref_masked_select(x, mask):
    shape = np.broadcast_shapes(x.shape, mask.shape)
    return np.broadcast_to(x, shape)[np.broadcast_to(mask, shape)]


# --------------------------------------------------------------------------------------------
# Values: plain and under jit (the mask traced), every shape pair.


@pytest.mark.parametrize(("shape", "mask_shape"), SHAPES)
def test_masked_fill_scatter_select_match_numpy(shape, mask_shape):
    x, mask = _operands(shape, mask_shape)
    n = int(np.broadcast_to(mask, np.broadcast_shapes(shape, mask_shape)).sum())
    source = np.arange(1.0, n + 3, dtype=np.float32).reshape(-1, 1)  # 2-D, two to spare

    want_fill = np.where(mask, np.float32(-7.5), x)
    want_scatter = _ref_masked_scatter(x, mask, source)
    want_select = _ref_masked_select(x, mask)

    np.testing.assert_array_equal(jgather.masked_fill(x, mask, -7.5), want_fill)
    np.testing.assert_array_equal(jgather.masked_scatter(x, mask, source), want_scatter)
    np.testing.assert_array_equal(jgather.masked_select(x, mask), want_select)

    @jax.jit
    def traced(x, mask, source, value):
        return (
            jgather.masked_fill(x, mask, value),
            jgather.masked_scatter(x, mask, source),
            jgather.masked_select(x, mask, size=n + 2, fill_value=np.float32(9)),
        )

    fill, scatter, select = traced(x, mask, source, jnp.float32(-7.5))
    np.testing.assert_array_equal(fill, want_fill)
    np.testing.assert_array_equal(scatter, want_scatter)
    np.testing.assert_array_equal(select, np.concatenate([want_select, [9, 9]]))


def test_under_vmap_each_example_has_its_own_mask_and_source():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    mask = rng.random((3, 4, 5)) < 0.4
    source = rng.normal(size=(3, 20)).astype(np.float32)
    fill = jax.vmap(jgather.masked_fill)(x, mask, jnp.arange(3.0))
    scatter = jax.vmap(jgather.masked_scatter)(x, mask, source)
    select = jax.vmap(lambda a, m: jgather.masked_select(a, m, size=20, fill_value=-1.0))(x, mask)
    for b in range(3):
        np.testing.assert_array_equal(fill[b], np.where(mask[b], np.float32(b), x[b]))
        np.testing.assert_array_equal(scatter[b], _ref_masked_scatter(x[b], mask[b], source[b]))
        want = _ref_masked_select(x[b], mask[b])
        np.testing.assert_array_equal(select[b, : want.size], want)
        np.testing.assert_array_equal(select[b, want.size :], -1.0)


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.complex64, jnp.bfloat16])
def test_other_dtypes_move_unchanged(dtype):
    x, mask = _operands((4, 6), (6,))
    x = (x * 4).astype(dtype)
    source = np.flip(x.reshape(-1)).copy()
    np.testing.assert_array_equal(
        jgather.masked_scatter(x, mask, source), _ref_masked_scatter(x, mask, source)
    )
    got = jgather.masked_select(x, mask)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, _ref_masked_select(x, mask))
    fill = jgather.masked_fill(x, mask, 1)
    assert fill.dtype == x.dtype
    np.testing.assert_array_equal(fill, np.where(mask, np.asarray(1).astype(dtype), x))


def test_empty_operands_and_no_true_values():
    x = np.zeros((0, 3), np.float32)
    assert jgather.masked_select(x, np.ones(3, bool)).shape == (0,)
    assert jgather.masked_scatter(x, np.ones(3, bool), np.zeros(0, np.float32)).shape == (0, 3)
    y = np.arange(4.0, dtype=np.float32)
    none = np.zeros(4, bool)
    np.testing.assert_array_equal(jgather.masked_scatter(y, none, np.zeros(0, np.float32)), y)
    assert jgather.masked_select(y, none).shape == (0,)
    np.testing.assert_array_equal(jgather.masked_select(y, none, size=2, fill_value=3), [3, 3])


# --------------------------------------------------------------------------------------------
# masked_select's static size; masked_scatter's source too small.


def test_masked_select_under_jit_needs_size_and_pads_or_truncates():
    x = np.arange(6.0, dtype=np.float32)
    mask = x % 2 == 1  # 1, 3, 5
    with pytest.raises(TypeError, match=r"masked_select: the mask is traced.*pass size="):
        jax.jit(jgather.masked_select)(x, mask)
    with pytest.raises(TypeError, match=r"masked_select: the mask is traced"):
        jax.vmap(jgather.masked_select)(x[None], mask[None])
    # A NumPy mask is known while tracing: its count fixes the length, no size= needed.
    np.testing.assert_array_equal(jax.jit(lambda x: jgather.masked_select(x, mask))(x), [1, 3, 5])
    fn = jax.jit(lambda x, m: jgather.masked_select(x, m, size=2))
    np.testing.assert_array_equal(fn(x, mask), [1.0, 3.0])  # as jnp.nonzero(size=2)
    np.testing.assert_array_equal(
        jax.jit(lambda x, m: jgather.masked_select(x, m, size=4))(x, mask), [1, 3, 5, 0]
    )
    with pytest.raises(ValueError, match=r"masked_select: size=2 is below the mask's 3 True"):
        jgather.masked_select(x, mask, size=2)


def test_masked_scatter_with_too_small_a_source():
    x = np.zeros(5, np.float32)
    mask = np.array([True, False, True, True, True])
    source = np.array([1.0, 2.0], np.float32)
    with pytest.raises(ValueError, match=r"masked_scatter: source has 2 elements .* 4 True"):
        jgather.masked_scatter(x, mask, source)
    want = _ref_masked_scatter(x, mask, source, drop=True)  # [1, 0, 2, 0, 0]
    np.testing.assert_array_equal(jgather.masked_scatter(x, mask, source, mode="drop"), want)
    # Under jit, mode None: the positions beyond the source keep the input, and checkify
    # reports the rank of the first one (2) against the source's size.
    checked = jax.jit(checkify.checkify(jgather.masked_scatter, errors=checkify.index_checks))
    err, out = checked(x, mask, source)
    np.testing.assert_array_equal(out, want)
    assert err.get() is not None and "index 2" in err.get() and "size 2" in err.get()
    err, _ = checked(x, mask, np.arange(4.0, dtype=np.float32))
    assert err.get() is None


# --------------------------------------------------------------------------------------------
# Gradients: the reference's formula, with the input broadcast over the mask.


def test_gradients():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5,))
    mask = rng.random((3, 5)) < 0.5
    n = int(mask.sum())
    source = rng.normal(size=(n + 2,))
    cot = rng.normal(size=(3, 5))
    cot_sel = rng.normal(size=(n,))

    _, vjp = jax.vjp(lambda a, v: jgather.masked_fill(a, mask, v), x, jnp.float32(1.0))
    gx, gv = vjp(cot)
    np.testing.assert_allclose(gx, np.where(mask, 0, cot).sum(0), rtol=1e-6)
    np.testing.assert_allclose(gv, cot[mask].sum(), rtol=1e-6)

    _, vjp = jax.vjp(lambda a, s: jgather.masked_scatter(a, mask, s), x, source)
    gx, gs = vjp(cot)
    np.testing.assert_allclose(gx, np.where(mask, 0, cot).sum(0), rtol=1e-6)
    np.testing.assert_array_equal(gs, np.concatenate([cot[mask], [0, 0]]).astype(gs.dtype))

    _, vjp = jax.vjp(lambda a: jgather.masked_select(a, mask), x)
    (gx,) = vjp(cot_sel)
    want = np.zeros((3, 5))
    want[mask] = cot_sel
    np.testing.assert_allclose(gx, want.sum(0), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# Fill values: torch's conversion (checked against torch) and the traced-value rule.

# (input dtype, value): each converts in torch; jgather must give torch's value.
CONVERSIONS = [
    ("int32", 2.5),
    ("int32", -2.5),
    ("int32", True),
    ("bool", 2),
    ("bool", 0.0),
    ("float32", True),
    ("float32", 1 + 0j),
    ("float16", float("inf")),
    ("float16", float("nan")),
    ("float16", 1 / 3),
    ("int32", np.float32(7.9)),
    # A negative integer into an unsigned dtype wraps down to -max (two's complement).
    ("uint8", -1),
    ("uint8", -255),
    ("int8", 127.0),
    # torch converts into half precision through float32: a tie there rounds to even.
    ("bfloat16", 1 + 2**-8 + 2**-30),
    ("float16", 1 + 2**-11 + 2**-30),
]
# (input dtype, value): torch raises "value cannot be converted ... without overflow".
OVERFLOWS = [
    ("int32", 1e20),
    ("uint8", 300),
    ("uint8", -256),
    ("uint8", -0.5),  # a negative float does not wrap
    ("int8", 127.5),  # a float must lie within [min, max], not just truncate into it
    ("float16", 1e6),
    ("int32", float("nan")),
    ("float32", 1j),
    ("float32", 1e300),
]


@pytest.mark.parametrize(("dtype", "value"), CONVERSIONS)
def test_fill_values_convert_as_torch(dtype, value):
    torch = pytest.importorskip("torch")
    mask = np.array([True, False, True])
    want = torch.masked_fill(
        torch.zeros(3, dtype=getattr(torch, dtype)), torch.from_numpy(mask), value
    )
    for v in (value, np.asarray(value)):  # a scalar, a concrete 0-d array
        got = jgather.masked_fill(jnp.zeros(3, dtype), mask, v)
        assert got.dtype.name == str(want.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(
            np.asarray(got).astype(np.complex128), want.to(torch.complex128).numpy()
        )


@pytest.mark.parametrize(("dtype", "value"), OVERFLOWS)
def test_fill_values_torch_cannot_convert_raise(dtype, value):
    torch = pytest.importorskip("torch")
    mask, x = np.array([True, False]), np.zeros(2, dtype)
    with pytest.raises(RuntimeError, match="without overflow"):
        torch.masked_fill(torch.from_numpy(x), torch.from_numpy(mask), value)
    with pytest.raises(ValueError, match=r"^masked_fill: value=.* cannot be converted"):
        jgather.masked_fill(x, mask, value)
    with pytest.raises(ValueError, match=r"^masked_select: fill_value=.* cannot be converted"):
        jgather.masked_select(x, mask, fill_value=value)


def test_traced_values_must_promote_to_the_input_dtype():
    mask = np.array([True, False])
    fill = jax.jit(jgather.masked_fill)
    x_bf16 = jnp.zeros(2, jnp.bfloat16)
    assert fill(x_bf16, mask, -1e4).dtype == jnp.bfloat16  # a weakly typed Python float
    np.testing.assert_array_equal(fill(np.zeros(2, np.float32), mask, jnp.int32(3)), [3, 0])
    for x, value in [
        (np.zeros(2, np.int32), jnp.float32(2.5)),
        (np.zeros(2, np.float32), jnp.complex64(1)),
        (x_bf16, jnp.float32(1)),
    ]:
        with pytest.raises(TypeError, match=r"masked_fill: a traced value of dtype .*\.astype"):
            fill(x, mask, value)


# --------------------------------------------------------------------------------------------
# Errors.

X, M = np.zeros((2, 3), np.float32), np.ones((2, 3), bool)
ERRORS = [
    (lambda: jgather.masked_fill(X, M.astype(np.uint8), 1.0), TypeError, "mask must be a bool"),
    (lambda: jgather.masked_fill(X, M[:, :2], 1.0), ValueError, "does not broadcast"),
    (lambda: jgather.masked_fill(X, M, np.ones(1)), ValueError, "0-d array"),
    (lambda: jgather.masked_fill(X, M, "a"), TypeError, "value must be an array"),
    (lambda: jgather.masked_scatter(X, M.astype(np.float32), X), TypeError, "bool"),
    (lambda: jgather.masked_scatter(X, M, X.astype(np.int32)), TypeError, "source dtype"),
    (lambda: jgather.masked_scatter(X, M, 1.0), TypeError, "source must be an array"),
    (lambda: jgather.masked_scatter(X, M, X, mode="clip"), ValueError, "unknown mode"),
    (lambda: jgather.masked_scatter(X, M[0, :2], X), ValueError, "does not broadcast"),
    (lambda: jgather.masked_select(X, M.astype(np.int32)), TypeError, "mask must be a bool"),
    (lambda: jgather.masked_select(X, M, size=-1), ValueError, "size must be >= 0"),
    (lambda: jgather.masked_select(X, M, size=2.0), TypeError, "size must be an int"),
]


@pytest.mark.parametrize(("call", "kind", "words"), ERRORS)
def test_errors(call, kind, words):
    with pytest.raises(kind, match=words) as info:
        call()
    assert str(info.value).split(":")[0] in ("masked_fill", "masked_scatter", "masked_select")
