"""select_scatter, slice_scatter and diagonal_scatter against NumPy assignment and torch.

The reference writes ``src`` into a copy of the input through NumPy's own view of the same
positions (``out[..., index, ...]``, ``out[..., start:end:step, ...]``, and the diagonal's
positions on the two axes moved last). Each case runs plain, under ``jax.jit`` and under
``jax.vmap`` (a batch of inputs and sources, the axes counted within an example);
gradients are the reference's: the cotangent with the view zeroed for the input, the
cotangent's view for ``src``. Dtype conversion and every rejected argument are checked
against torch itself; that no program scatters is checked with the accelerator programs
(test_accelerator_programs.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather


def _view(out, op, args):
    """NumPy's writable view of ``out`` at the positions ``op`` writes, for ``args``."""
    if op == "select_scatter":
        dim, index = args
        return out, (slice(None),) * (dim % out.ndim) + (index,)
    if op == "slice_scatter":
        dim, start, end, step = args
        return out, (slice(None),) * (dim % out.ndim) + (slice(start, end, step),)
    offset, dim1, dim2 = args
    moved = np.moveaxis(out, (dim1, dim2), (-2, -1))
    rows, columns = moved.shape[-2:]
    ks = range(max(0, -offset), min(rows, columns - offset))
    r = np.array(list(ks), dtype=np.intp)
    return moved, (..., r, r + offset)


def _reference(op, x, src, args):
    out = np.array(x)
    view, where = _view(out, op, args)
    view[where] = src
    return out


def _view_shape(op, x, args):
    view, where = _view(np.array(x), op, args)
    return view[where].shape


# op -> (input shape, args): negative dims and indices, clamped and empty slices, strided
# slices, offsets above and below, swapped and non-adjacent diagonal axes.
CASES = [
    ("select_scatter", (3, 4, 5), (1, 2)),
    ("select_scatter", (3, 4, 5), (-1, -1)),
    ("select_scatter", (4,), (0, -4)),
    ("slice_scatter", (6, 5), (0, None, None, 1)),
    ("slice_scatter", (6, 5), (0, 1, 4, 1)),
    ("slice_scatter", (6, 5), (1, -3, None, 1)),
    ("slice_scatter", (6, 5), (-1, 0, 5, 2)),
    ("slice_scatter", (6, 5), (0, -100, 100, 4)),
    ("slice_scatter", (6, 5), (0, 1, -1, 3)),
    ("slice_scatter", (6, 5), (0, 4, 2, 1)),  # start after end: empty
    ("slice_scatter", (6, 5), (1, 9, None, 1)),  # start beyond the axis: empty
    ("diagonal_scatter", (4, 5), (0, 0, 1)),
    ("diagonal_scatter", (4, 5), (2, 0, 1)),
    ("diagonal_scatter", (4, 5), (-3, 0, 1)),
    ("diagonal_scatter", (4, 5), (1, 1, 0)),
    ("diagonal_scatter", (4, 5), (7, 0, 1)),  # beyond the matrix: empty diagonal
    ("diagonal_scatter", (3, 2, 4), (1, 2, 0)),
    ("diagonal_scatter", (3, 2, 4), (-1, -1, -3)),
]


def _call(op, x, src, args):
    return getattr(jgather, op)(x, src, *args)


def _operands(op, shape, args, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    src = rng.normal(size=_view_shape(op, x, args)).astype(np.float32)
    return x, src


@pytest.mark.parametrize(("op", "shape", "args"), CASES)
def test_matches_numpy_plain_jit_and_vmap(op, shape, args):
    x, src = _operands(op, shape, args)
    want = _reference(op, x, src, args)
    np.testing.assert_array_equal(_call(op, x, src, args), want)
    np.testing.assert_array_equal(jax.jit(lambda a, s: _call(op, a, s, args))(x, src), want)
    xs = np.stack([x, x + 1])
    srcs = np.stack([src, -src])
    got = jax.vmap(lambda a, s: _call(op, a, s, args))(xs, srcs)
    for b in range(2):
        np.testing.assert_array_equal(got[b], _reference(op, xs[b], srcs[b], args))


@pytest.mark.parametrize(("op", "shape", "args"), CASES[::3])
def test_gradients(op, shape, args):
    x, src = _operands(op, shape, args, seed=1)
    cot = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    _, vjp = jax.vjp(lambda a, s: _call(op, a, s, args), x, src)
    gx, gs = vjp(cot)
    view, where = _view(cot.copy(), op, args)
    np.testing.assert_array_equal(gs, view[where])
    np.testing.assert_array_equal(gx, _reference(op, cot, np.zeros_like(src), args))


# (op, input dtype, src dtype): src converted to the input's dtype, as torch copies it.
DTYPES = [
    ("select_scatter", "float32", "int32"),
    ("slice_scatter", "int32", "float32"),
    ("diagonal_scatter", "bool", "float32"),
    ("slice_scatter", "complex64", "float32"),
    ("diagonal_scatter", "float16", "float32"),
]


@pytest.mark.parametrize(("op", "dtype", "src_dtype"), DTYPES)
def test_src_converts_to_the_input_dtype_as_torch(op, dtype, src_dtype):
    torch = pytest.importorskip("torch")
    args = {"select_scatter": (0, 1), "slice_scatter": (1, 0, None, 2)}.get(op, (1, 0, 1))
    x = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    src = np.random.default_rng(0).normal(size=_view_shape(op, x, args)) * 3
    src = src.astype(src_dtype)
    want = getattr(torch, op)(torch.from_numpy(x), torch.from_numpy(src), *args).numpy()
    got = _call(op, x, src, args)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


X = np.zeros((3, 4), np.float32)
# (op, input, src, args, jgather's exception, words): each is rejected by torch too, except
# the complex src (torch drops the imaginary part with a warning; jgather asks for jnp.real).
ERRORS = [
    ("select_scatter", X, np.ones(4), (0, 3), IndexError, "index 3 is out of range"),
    ("select_scatter", X, np.ones(4), (0, -4), IndexError, "index -4 is out of range"),
    ("select_scatter", X, np.ones(4), (2, 0), IndexError, "dim 2 is out of range"),
    ("select_scatter", X, np.ones(3), (0, 0), ValueError, "src shape"),
    ("select_scatter", X, np.ones(1), (0, 0), ValueError, "does not broadcast"),
    ("select_scatter", np.float32(1), np.float32(2), (0, 0), IndexError, "0-d input"),
    ("select_scatter", X, np.ones(4), (0, 1.0), TypeError, "index must be an int"),
    ("slice_scatter", X, np.ones((3, 4)), (1, 0, 4, 0), ValueError, "step must be positive"),
    ("slice_scatter", X, np.ones((3, 4)), (1, 0, 4, -1), ValueError, "step must be positive"),
    ("slice_scatter", X, np.ones((3, 3)), (1, 0, 4), ValueError, "src shape"),
    ("slice_scatter", X, np.ones((1, 4)), (1, 0, 4), ValueError, "src shape"),
    ("slice_scatter", X, np.ones(4), (1,), ValueError, "src shape"),
    ("slice_scatter", X, np.ones((3, 4)), (2,), IndexError, "dim 2 is out of range"),
    ("slice_scatter", X, np.ones((3, 4)), (1, 0.0), TypeError, "start must be an int"),
    ("slice_scatter", np.float32(1), np.float32(2), (0,), IndexError, "0-d input"),
    ("diagonal_scatter", X, np.ones(4), (), ValueError, "src shape"),
    ("diagonal_scatter", X, np.ones(3), (0, 1, 1), ValueError, "cannot be identical"),
    ("diagonal_scatter", X, np.ones(3), (0, 1, -1), ValueError, "cannot be identical"),
    ("diagonal_scatter", X, np.ones(3), (0, 0, 2), IndexError, "dim 2 is out of range"),
    ("diagonal_scatter", np.zeros(3), np.ones(3), (), IndexError, "dim 1 is out of range"),
    ("diagonal_scatter", X, np.ones(3), (0.5,), TypeError, "offset must be an int"),
]


@pytest.mark.parametrize(("op", "x", "src", "args", "kind", "words"), ERRORS)
def test_errors_where_torch_raises(op, x, src, args, kind, words):
    torch = pytest.importorskip("torch")
    with pytest.raises((RuntimeError, IndexError, TypeError)):
        getattr(torch, op)(torch.as_tensor(x), torch.as_tensor(src), *args)
    with pytest.raises(kind, match=words) as info:
        getattr(jgather, op)(x, src, *args)
    assert str(info.value).startswith(f"{op}: "), str(info.value)


def test_complex_src_into_a_real_input_is_refused():
    src = np.ones(4, np.complex64)
    with pytest.raises(TypeError, match=r"select_scatter: src is complex .* jnp\.real"):
        jgather.select_scatter(X, src, 0, 0)


def test_traced_positions_are_refused():
    with pytest.raises(TypeError, match=r"select_scatter: index fixes the written positions"):
        jax.jit(lambda i: jgather.select_scatter(X, jnp.ones(4), 0, i))(1)
