"""torch's index family (``index_add``, ``index_copy``, ``index_fill``, ``index_reduce``,
``index_put``, ``take``, ``put``) against torch on CPU, eagerly, under jax.jit and jax.vmap.

Values are compared bit for bit with torch's (float64 inputs, so no accumulation order can
round differently); duplicate indices of the writing ops are also checked against a NumPy
loop ("the last writer wins"). Gradients are compared with torch autograd in float64.
The cross-cutting tables (checkify, meshes, x64, low precision, export, OpInfo) hold the
rest; torch's own samples run in tests/test_torch_opinfo.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.usefixtures("x64_on"),
    pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta"),
]

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 5, 3))
XI = RNG.integers(-4, 5, (4, 5, 3))
DUP = np.array([4, 0, 4, 2, 4, 0])  # repeated values along axis 1 (size 5)
NEG = np.array([-1, 0, -5, 3])  # index_fill wraps [-5, 0)
SRC1 = RNG.standard_normal((4, 6, 3))  # DUP's slices along axis 1
SRC1I = RNG.integers(-4, 5, (4, 6, 3))
ROWS = np.array([[0], [3], [-1]])  # index_put: broadcast with COLS to [3, 4]
COLS = np.array([1, -5, 4, 1])
VALS = RNG.standard_normal((3, 4, 3))
FLAT = np.array([[0, 59, -1], [7, 7, -60]])  # put/take: flat positions of X (60 elements)
FLATSRC = RNG.standard_normal((2, 3))


def _t(a):
    return torch.from_numpy(np.array(a)) if isinstance(a, np.ndarray) else a


# name -> (jgather function of arrays, torch function of tensors, arguments)
CASES = {
    "index_add": (
        lambda x, s: jgather.index_add(x, 1, DUP, s, alpha=-2.0),
        lambda x, s: torch.index_add(x, 1, _t(DUP), s, alpha=-2.0),
        (X, SRC1),
    ),
    "index_add int": (
        lambda x, s: jgather.index_add(x, 1, DUP, s, alpha=3),
        lambda x, s: torch.index_add(x, 1, _t(DUP), s, alpha=3),
        (XI, SRC1I),
    ),
    "index_add last axis": (
        lambda x, s: jgather.index_add(x, -1, np.array([2, 2, 0]), s),
        lambda x, s: torch.index_add(x, -1, _t(np.array([2, 2, 0])), s),
        (X, X),
    ),
    "index_copy": (
        lambda x, s: jgather.index_copy(x, 1, DUP, s),
        lambda x, s: torch.index_copy(x, 1, _t(DUP), s),
        (X, SRC1),
    ),
    "index_fill": (
        lambda x: jgather.index_fill(x, 1, NEG, -7.5),
        lambda x: torch.index_fill(x, 1, _t(NEG), -7.5),
        (X,),
    ),
    "index_fill int truncates": (
        lambda x: jgather.index_fill(x, 0, np.array([1]), 2.9),
        lambda x: torch.index_fill(x, 0, _t(np.array([1])), 2.9),
        (XI,),
    ),
    **{
        f"index_reduce {r} include_self={inc}": (
            lambda x, s, r=r, inc=inc: jgather.index_reduce(x, 1, DUP, s, r, include_self=inc),
            lambda x, s, r=r, inc=inc: torch.index_reduce(x, 1, _t(DUP), s, r, include_self=inc),
            (X, SRC1),
        )
        # each reduction once, include_self both ways across them (the OpInfo samples and
        # tests/test_scatter.py's scatter_reduce, the same engine request, hold the rest)
        for r, inc in (("prod", True), ("mean", False), ("amax", True), ("amin", False))
    },
    "index_reduce int mean floors": (
        lambda x, s: jgather.index_reduce(x, 1, DUP, s, "mean"),
        lambda x, s: torch.index_reduce(x, 1, _t(DUP), s, "mean"),
        (XI, SRC1I),
    ),
    **{
        f"index_put accumulate={acc}": (
            lambda x, v, acc=acc: jgather.index_put(x, (ROWS, COLS), v, acc),
            lambda x, v, acc=acc: torch.index_put(x, (_t(ROWS), _t(COLS)), v, acc),
            (X, VALS),
        )
        for acc in (False, True)
    },
    "index_put broadcast values": (
        lambda x, v: jgather.index_put(x, (np.array([2, 2, 1]),), v[0, 0]),
        lambda x, v: torch.index_put(x, (_t(np.array([2, 2, 1])),), v[0, 0]),
        (X, VALS),
    ),
    "index_put three arrays": (
        lambda x, v: jgather.index_put(x, (ROWS, COLS, np.array([0, 2, 2, 1])), v[:, :, 0], True),
        lambda x, v: torch.index_put(
            x, (_t(ROWS), _t(COLS), _t(np.array([0, 2, 2, 1]))), v[:, :, 0], True
        ),
        (X, VALS),
    ),
    **{
        f"put accumulate={acc}": (
            lambda x, s, acc=acc: jgather.put(x, FLAT, s, acc),
            lambda x, s, acc=acc: torch.put(x, _t(FLAT), s, acc),
            (X, FLATSRC),
        )
        for acc in (False, True)
    },
    "take": (
        lambda x: jgather.take(x, FLAT),
        lambda x: torch.take(x, _t(FLAT)),
        (X,),
    ),
}


def _assert_same(got, want, what):
    got, want = np.asarray(got), want.numpy()
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want, err_msg=what)


@pytest.mark.parametrize("name", CASES)
def test_values_match_torch_eager_jit_and_vmap(name):
    fn, tfn, args = CASES[name]
    want = tfn(*map(_t, args))
    _assert_same(fn(*args), want, f"{name} eager")
    _assert_same(jax.jit(fn)(*args), want, f"{name} jit")
    # vmap over two examples: the second one's arguments negated (integers: reversed).
    other = [a[::-1].copy() if a.dtype.kind == "i" else -a for a in args]
    batched = jax.vmap(fn)(*(np.stack([a, b]) for a, b in zip(args, other, strict=True)))
    _assert_same(batched[0], want, f"{name} vmap")
    _assert_same(batched[1], tfn(*map(_t, other)), f"{name} vmap (second)")


def test_duplicates_the_last_writer_wins():
    """index_copy, index_put and put with many duplicates: a NumPy loop in order (the last
    write stays), which torch's CPU kernels also give."""
    rng = np.random.default_rng(1)
    n = 2000
    idx = rng.integers(-7, 7, n)
    vals = rng.standard_normal(n)
    x = np.zeros(7)
    want = x.copy()
    for i, v in zip(idx, vals, strict=True):
        want[i] = v  # NumPy wraps negatives as torch's index_put and put do
    pos = np.where(idx < 0, idx + 7, idx)
    got = {
        "index_copy": jgather.index_copy(x, 0, pos, vals),
        "index_put": jgather.index_put(x, (idx,), vals),
        "put": jgather.put(x, idx, vals),
        "index_put jit": jax.jit(lambda x, i, v: jgather.index_put(x, (i,), v))(x, idx, vals),
    }
    for name, out in got.items():
        np.testing.assert_array_equal(out, want, err_msg=name)
    np.testing.assert_array_equal(
        torch.index_put(_t(x), (_t(idx),), _t(vals)).numpy(), want, err_msg="torch"
    )


def test_bool_masks_as_torch_and_the_static_size_form_under_jit():
    mask = np.array([[True, False, True, False, False]] * 2 + [[False] * 5] * 2)  # [4, 5]
    vals = RNG.standard_normal((4, 3))
    cases = {
        "2-D mask": ((mask,), vals),
        "mask then an index": ((np.array([True, False, False, True]), np.array([1, 4])), 2.5),
        "index then mask": (
            (np.array([[0], [3]]), np.array([True, False, False, False, True])),
            1.0,
        ),
    }
    for name, (indices, v) in cases.items():
        for acc in (False, True):
            want = torch.index_put(
                _t(X), tuple(map(_t, indices)), torch.tensor(v, dtype=torch.float64), acc
            )
            got = jgather.index_put(X, indices, v, acc)
            _assert_same(got, want, f"{name} accumulate={acc}")
    # Under jit a traced mask cannot give a shape: the error names the static-size form...
    with pytest.raises(TypeError, match=r"index_put: .*traced bool mask.*jnp\.nonzero"):
        jax.jit(lambda x, m: jgather.index_put(x, (m,), vals))(X, mask)

    # ... which, padded with out-of-range positions and mode='drop', gives the same result.
    def static(x, m, v):
        rows, cols = jnp.nonzero(m, size=6, fill_value=m.shape)
        padded = jnp.concatenate([v, jnp.zeros((2, 3))])
        return jgather.index_put(x, (rows, cols), padded, True, mode="drop")

    want = torch.index_put(_t(X), (_t(mask),), _t(vals), True)
    _assert_same(jax.jit(static)(X, mask, vals), want, "nonzero(size=) form")


# name -> (jgather function, torch function, arguments; differentiated: all float arrays)
GRADS = {
    "index_add": (
        lambda x, s: jgather.index_add(x, 1, DUP, s, alpha=-2.0),
        lambda x, s: torch.index_add(x, 1, _t(DUP), s, alpha=-2.0),
        (X, SRC1),
    ),
    "index_copy": (
        lambda x, s: jgather.index_copy(x, 1, np.array([4, 2, 0]), s[:, :3]),
        lambda x, s: torch.index_copy(x, 1, _t(np.array([4, 2, 0])), s[:, :3]),
        (X, SRC1),
    ),
    "index_fill value": (
        # torch's backward for value reads the index with index_select (no negatives)
        lambda x, v: jgather.index_fill(x, 1, np.array([0, 4, 0]), v),
        lambda x, v: torch.index_fill(x, 1, _t(np.array([0, 4, 0])), v),
        (X, np.array(0.5)),
    ),
    **{
        f"index_reduce {r} include_self={inc}": (
            lambda x, s, r=r, inc=inc: jgather.index_reduce(x, 1, DUP, s, r, include_self=inc),
            lambda x, s, r=r, inc=inc: torch.index_reduce(x, 1, _t(DUP), s, r, include_self=inc),
            (np.where(X > 1, 0.0, X), np.where(SRC1 > 1.5, 0.0, SRC1)),  # zeros for 'prod'
        )
        for r, inc in (("prod", True), ("prod", False), ("mean", True), ("amax", True))
    },
    "index_put accumulate": (
        lambda x, v: jgather.index_put(x, (ROWS, COLS), v, True),
        lambda x, v: torch.index_put(x, (_t(ROWS), _t(COLS)), v, True),
        (X, VALS),
    ),
    "index_put": (
        lambda x, v: jgather.index_put(x, (ROWS[:2], COLS[:3]), v[:2, :3]),  # no duplicates
        lambda x, v: torch.index_put(x, (_t(ROWS[:2]), _t(COLS[:3])), v[:2, :3]),
        (X, VALS),
    ),
    "put accumulate": (
        lambda x, s: jgather.put(x, FLAT, s, True),
        lambda x, s: torch.put(x, _t(FLAT), s, True),
        (X, FLATSRC),
    ),
    "take": (lambda x: jgather.take(x, FLAT), lambda x: torch.take(x, _t(FLAT)), (X,)),
}


@pytest.mark.parametrize("name", GRADS)
def test_float64_gradients_match_torch(name):
    fn, tfn, args = GRADS[name]
    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    out = tfn(*tensors)
    cot = np.random.default_rng(2).standard_normal(tuple(out.shape))
    want = torch.autograd.grad(out, tensors, torch.from_numpy(cot))
    _, vjp = jax.vjp(jax.jit(fn), *map(jnp.asarray, args))
    for k, (g, w) in enumerate(zip(vjp(jnp.asarray(cot)), want, strict=True)):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"{name} {k}")


def test_overwritten_duplicates_get_no_gradient():
    """The porting guide's difference: torch gives every duplicate the cotangent; jgather
    gives it to the slice that was written (the last) only."""
    g = jax.grad(lambda s: jgather.index_copy(jnp.zeros(2), 0, np.array([1, 1]), s).sum())(
        jnp.array([1.0, 2.0])
    )
    np.testing.assert_array_equal(g, [0.0, 1.0])
    s = torch.tensor([1.0, 2.0], requires_grad=True)
    torch.index_copy(torch.zeros(2), 0, torch.tensor([1, 1]), s).sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), [1.0, 1.0])


F = np.zeros((3, 2))
I1 = np.array([0, 1])
ERRORS = [
    # (call, exception, message fragment)
    (lambda: jgather.index_add(F, 0, I1, np.ones((2, 2), np.float32)), TypeError, "dtype"),
    (lambda: jgather.index_add(F, 0, I1.astype(float), np.ones((2, 2))), TypeError, "integer"),
    (lambda: jgather.index_add(F, 0, I1[None], np.ones((2, 2))), ValueError, "1-D"),
    (lambda: jgather.index_add(F, 0, I1, np.ones((3, 2))), ValueError, "source shape"),
    (lambda: jgather.index_add(F, 0, I1, np.ones(2)), ValueError, "source shape"),
    (lambda: jgather.index_add(F, 0, np.array([0, 3]), np.ones((2, 2))), IndexError, "3"),
    (lambda: jgather.index_add(F, 0, np.array([-1, 0]), np.ones((2, 2))), IndexError, "-1"),
    (lambda: jgather.index_add(F, 2, I1, np.ones((2, 2))), IndexError, "dim"),
    (lambda: jgather.index_add(F, 0, I1, np.ones((2, 2)), mode="wrap"), ValueError, "mode"),
    (lambda: jgather.index_add(I1, 0, I1, I1, alpha=1.5), TypeError, "alpha"),
    (lambda: jgather.index_add(F, 0, I1, np.ones((2, 2)), alpha=1j), TypeError, "complex"),
    (lambda: jgather.index_copy(F, 0, I1, np.ones((2, 2), int)), TypeError, "dtype"),
    (lambda: jgather.index_fill(F, 0, np.array([3]), 1.0), IndexError, "3"),
    (lambda: jgather.index_fill(F, 0, np.array([-4]), 1.0), IndexError, "-4"),
    (lambda: jgather.index_fill(F, 0, I1, np.ones(1)), ValueError, "0-d"),
    (lambda: jgather.index_fill(I1.astype(np.int32), 0, I1, 2**40), ValueError, "overflow"),
    (lambda: jgather.index_reduce(F, 0, I1, np.ones((2, 2)), "sum"), ValueError, "index_add"),
    (lambda: jgather.index_reduce(F > 0, 0, I1, F[:2] > 0, "amax"), TypeError, "bool"),
    (lambda: jgather.index_reduce(F, 0, I1, F[:2], "prod", include_self=1), TypeError, "bool"),
    (lambda: jgather.index_put(F, I1, 1.0), TypeError, "tuple"),
    (lambda: jgather.index_put(F, (), 1.0), ValueError, "empty"),
    (lambda: jgather.index_put(F, (None, I1), 1.0), TypeError, "arrays"),
    (lambda: jgather.index_put(F, (I1, I1, I1), 1.0), IndexError, "too many"),
    # A 0-d input takes no index, a 0-d bool mask included (torch's IndexError).
    (lambda: jgather.index_put(np.float32(5), (np.array(True),), 1.0), IndexError, "too many"),
    (lambda: jgather.index_put(np.float32(5), (np.array(0),), 1.0), IndexError, "too many"),
    (lambda: jgather.index_put(F, (I1, np.arange(3)), 1.0), ValueError, "broadcast"),
    (lambda: jgather.index_put(F, (I1,), np.ones((3, 2))), ValueError, "broadcast"),
    (lambda: jgather.index_put(F, (I1,), np.ones(2, np.float32)), TypeError, "dtype"),
    (lambda: jgather.index_put(F, (np.array([True, False]),), 1.0), ValueError, "mask"),
    (lambda: jgather.index_put(F, (I1.astype(np.uint8),), 1.0), TypeError, "uint8"),
    (lambda: jgather.index_put(F, (np.array([3]),), 1.0), IndexError, "3"),
    (lambda: jgather.index_put(F, (I1,), 1.0, accumulate=1), TypeError, "accumulate"),
    (lambda: jgather.put(F, I1, np.ones(3)), ValueError, "elements"),
    (lambda: jgather.put(F, np.array([6]), np.ones(1)), IndexError, "6"),
    (lambda: jgather.put(F, np.array([-7]), np.ones(1)), IndexError, "-7"),
    (lambda: jgather.take(F, np.array([6])), IndexError, "6"),
    (lambda: jgather.take(np.zeros(0), np.array([0])), IndexError, "0"),
    (lambda: jgather.take(F, I1, mode="drop"), ValueError, "mode"),
]


@pytest.mark.parametrize("k", range(len(ERRORS)))
def test_errors_name_the_function_and_the_problem(k):
    call, kind, fragment = ERRORS[k]
    with pytest.raises(kind, match=fragment) as info:
        call()
    assert type(info.value) is kind
    name = str(info.value).split(":")[0]
    assert name in (
        "index_add",
        "index_copy",
        "index_fill",
        "index_reduce",
        "index_put",
        "put",
        "take",
    ), str(info.value)


def test_modes_drop_and_clip_under_jit():
    """Out-of-range values under jit: mode None and 'drop' drop them, 'clip' clamps each
    index array into its axis (NumPy's clip mode as reference)."""
    x = np.zeros((2, 3))
    rows, cols = np.array([0, 5, -9]), np.array([1, 1, 7])
    for mode in (None, "drop"):
        out = jax.jit(lambda x, r, c, m=mode: jgather.index_put(x, (r, c), 1.0, True, mode=m))(
            x, rows, cols
        )
        np.testing.assert_array_equal(out, [[0, 1, 0], [0, 0, 0]])
    out = jax.jit(lambda x, r, c: jgather.index_put(x, (r, c), 1.0, True, mode="clip"))(
        x, rows, cols
    )
    want = np.zeros((2, 3))
    np.add.at(want, (np.clip(rows, 0, 1), np.clip(cols, 0, 2)), 1.0)
    np.testing.assert_array_equal(out, want)
    flat = np.arange(6.0)
    got = jax.jit(lambda i: jgather.take(flat, i, mode="clip"))(np.array([-1, 9, -9]))
    np.testing.assert_array_equal(got, [5.0, 5.0, 0.0])  # -1 wraps; the rest clamp
    got = jax.jit(lambda i: jgather.take(flat, i))(np.array([-6, 6]))
    np.testing.assert_array_equal(got, [0.0, np.nan])


def test_deliberate_differences_next_to_torch():
    """The porting guide's items: a fractional alpha for an integer input (torch truncates
    it) and a uint8 index (torch reads it as a bool mask) are errors here."""
    x, i, s = np.zeros(3, np.int64), np.array([1]), np.ones(1, np.int64)
    want = torch.index_add(_t(x), 0, _t(i), _t(s), alpha=1.5)
    np.testing.assert_array_equal(want.numpy(), [0, 1, 0])  # truncated to alpha=1
    with pytest.raises(TypeError, match=r"index_add: alpha=1\.5 is not an integer"):
        jgather.index_add(x, 0, i, s, alpha=1.5)
    positions = np.array([0, 2], np.uint8)  # meant as positions, read by torch as a mask
    with pytest.raises(IndexError, match="shape of the mask"):
        torch.index_put(torch.zeros(3), (_t(positions),), torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"index_put: indices\[0\] is uint8"):
        jgather.index_put(np.zeros(3), (positions,), 1.0)
    np.testing.assert_array_equal(
        jgather.index_put(np.zeros(3), (positions.astype(np.int32),), 1.0), [1.0, 0.0, 1.0]
    )
