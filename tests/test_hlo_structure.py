"""The compiled programs of the ops on XLA:CPU: structure, not timings.

For every op, jitted on abstract shapes (nothing large is allocated), the optimized HLO must
hold the expected number of gather and scatter instructions, no copy that changes the
physical layout of the index or updates (a transpose XLA would insert around a badly
lowered gather or scatter), and no ``conditional`` where the fast path can be chosen at
trace time. The run-time choice is left in exactly one place: a scatter whose index spans
the input's trailing axes and arrives as an opaque array (a jit argument), where only its
values can tell whether it is torch's ``index.expand`` idiom.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pipelines import users_compile
from reference import scatter_reduce as ref_scatter_reduce

import jgather
from jgather import _engine

_INSTR = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (.*?) ([a-z][\w\-]*)\(", re.M)
_ARRAY = re.compile(r"^\w+\[([\d,]*)\]\{([\d,]*)[^}]*\}$")


def _hlo(fn, *avals):
    return users_compile(jax.jit(fn).lower(*avals)).as_text()


def _opcodes(text: str) -> list[str]:
    return [m.group(3) for m in _INSTR.finditer(text)]


def _count(text: str, opcode: str) -> int:
    return _opcodes(text).count(opcode)


def _physical(type_str: str) -> tuple[int, ...] | None:
    """Minor-to-major order of an array type's dimensions, size-1 dimensions dropped."""
    m = _ARRAY.match(type_str.strip())
    if m is None:
        return None
    dims = [int(d) for d in m.group(1).split(",") if d]
    layout = [int(d) for d in m.group(2).split(",") if d]
    return tuple(d for d in layout if dims[d] != 1)


def _layout_changing_copies(text: str) -> list[str]:
    """Copies whose operand and result differ in physical layout (size-1 dims ignored)."""
    types = {m.group(1): m.group(2) for m in _INSTR.finditer(text)}
    params = dict(re.findall(r"%([\w.\-]+): (\w+\[[\d,]*\](?:\{[\d,]*\})?)", text))
    bad = []
    for m in re.finditer(r"%([\w.\-]+) = (\S+) copy\(%([\w.\-]+)\)", text):
        result, operand = m.group(2), types.get(m.group(3), params.get(m.group(3)))
        if operand is None:
            continue
        if _physical(result) != _physical(operand):
            bad.append(m.group(0))
    return bad


def f32(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def i32(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.int32)


GATHERS = {
    # name: (fn, avals)
    "gather_dim1": (lambda x, i: jgather.gather(x, 1, i), (f32(64, 96, 32), i32(64, 12, 32))),
    "gather_dim0": (lambda x, i: jgather.gather(x, 0, i), (f32(512, 64), i32(128, 64))),
    "gather_last": (lambda x, i: jgather.gather(x, -1, i), (f32(16, 64, 128), i32(16, 64, 8))),
    "gather_1d": (lambda x, i: jgather.gather(x, 0, i), (f32(4096), i32(1024))),
    "gather_fill": (
        lambda x, i: jgather.gather(x, 1, i, mode="fill", fill_value=0.0),
        (f32(64, 96), i32(64, 12)),
    ),
    "gather_clip": (lambda x, i: jgather.gather(x, 1, i, mode="clip"), (f32(64, 96), i32(64, 8))),
    "gather_pib": (
        lambda x, i: jgather.gather(x, 1, i, mode="promise_in_bounds"),
        (f32(64, 96), i32(64, 8)),
    ),
    "take_along_dim": (
        lambda x, i: jgather.take_along_dim(x, i, dim=1),
        (f32(64, 96), i32(1, 8)),
    ),
    "take_along_dim_flat": (lambda x, i: jgather.take_along_dim(x, i), (f32(64, 96), i32(100))),
    "index_select": (lambda x, i: jgather.index_select(x, 1, i), (f32(64, 96, 8), i32(10))),
}


@pytest.mark.parametrize("name", GATHERS)
def test_gathers_are_one_gather_without_copies_or_conditionals(name):
    fn, avals = GATHERS[name]
    text = _hlo(fn, *avals)
    assert _count(text, "gather") == 1, name
    assert _count(text, "scatter") == 0, name
    assert _count(text, "conditional") == 0, name
    assert _count(text, "transpose") == 0, name
    assert _layout_changing_copies(text) == [], name


def test_gather_gradient_is_one_scatter():
    def loss(x, i):
        return jgather.gather(x, 1, i).sum()

    text = _hlo(jax.grad(loss), f32(64, 96), i32(64, 12))
    assert _count(text, "scatter") == 1
    assert _count(text, "conditional") == 0
    assert _layout_changing_copies(text) == []


def _expand_inside(op):
    def fn(x, dst, s):
        return op(x, jnp.broadcast_to(dst[:, None], s.shape), s)

    return fn


def _expand_dim1(op):
    def fn(x, dst, s):
        return op(x, jnp.broadcast_to(dst[:, :, None], s.shape), s)

    return fn


def _add(dim):
    return lambda x, i, s: jgather.scatter_add(x, dim, i, s)


# name: (fn, avals, scatters, conditionals, loops). An index of 2**17 elements is above the
# size where an opaque index gets the run-time whole-rows test. A multi-dimensional
# per-element index of at least four chunks of 2**14 elements scatters in a loop over chunks
# (one scatter in the loop body, one more for remainder rows).
SCATTERS = {
    "add_1d": (_add(0), (f32(1000), i32(50_000), f32(50_000)), 1, 0, 0),
    "add_per_element_small": (_add(0), (f32(100, 16), i32(400, 16), f32(400, 16)), 1, 0, 0),
    "add_index_narrower_than_input": (
        _add(0),
        (f32(1000, 64), i32(4096, 32), f32(4096, 32)),
        1,
        0,
        1,
    ),
    "add_last_axis": (_add(1), (f32(512, 512), i32(512, 256), f32(512, 256)), 1, 0, 1),
    "add_trailing_size_1": (
        _add(0),
        (f32(1000, 1), i32(150_000, 1), f32(150_000, 1)),
        2,
        0,
        1,
    ),
    "amax_excl_chunked": (
        lambda x, i, s: jgather.scatter_reduce(x, 1, i, s, "amax", include_self=False),
        (f32(512, 512), i32(512, 256), f32(512, 256)),
        2,
        0,
        2,
    ),
    "add_expanded_inside_jit": (
        _expand_inside(_add(0)),
        (f32(1000, 64), i32(4096), f32(4096, 64)),
        1,
        0,
        0,
    ),
    "add_expanded_inside_jit_dim1": (
        _expand_dim1(_add(1)),
        (f32(4, 1000, 64), i32(4, 1024), f32(4, 1024, 64)),
        1,
        0,
        0,
    ),
    "mean_expanded_inside_jit": (
        _expand_inside(lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "mean")),
        (f32(1000, 64), i32(4096), f32(4096, 64)),
        None,
        0,
        0,
    ),
    "set_expanded_inside_jit": (
        _expand_inside(lambda x, i, s: jgather.scatter(x, 0, i, s)),
        (f32(1000, 64), i32(4096), f32(4096, 64)),
        None,
        0,
        0,
    ),
    # The one run-time choice: an opaque index spanning the trailing axes. Two chained
    # conditionals (a one-slice test, then the full test), the chunked per-element scatter in
    # one branch and the whole-rows scatter in the other.
    "add_opaque_spanning_index": (
        _add(0),
        (f32(1000, 64), i32(4096, 64), f32(4096, 64)),
        2,
        2,
        1,
    ),
}


@pytest.mark.parametrize("name", SCATTERS)
def test_scatter_structure(name):
    fn, avals, scatters, conditionals, loops = SCATTERS[name]
    text = _hlo(fn, *avals)
    assert _count(text, "conditional") == conditionals, name
    assert _count(text, "while") == loops, name
    if scatters is not None:
        assert _count(text, "scatter") == scatters, name
    assert _count(text, "transpose") == 0, name
    assert _layout_changing_copies(text) == [], name


def test_expanded_index_inside_jit_is_found_at_trace_time():
    """The trace-time detection of ``jnp.broadcast_to`` reads a JAX-internal field of the
    tracer; on a JAX version where that field changes this fails (the scatter would still be
    right, through the run-time test, but slower)."""
    seen = []

    def fn(x, dst, s):
        index = jnp.broadcast_to(dst[:, None], s.shape)
        _, wide = jgather._indexing.as_index("t", "index", index)
        seen.append(_engine.rows_source(index, wide, 0, x.shape))
        return x

    jax.make_jaxpr(fn)(jnp.zeros((10, 4)), jnp.zeros(6, jnp.int32), jnp.zeros((6, 4)))
    assert seen[0] is not None and seen[0].shape == (6,)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d, s: jnp.broadcast_to(d[:, None], s.shape), id="broadcast_to"),
        pytest.param(
            lambda d, s: d[:, None].astype(jnp.int16) + jnp.zeros_like(s, jnp.int16),
            id="add_not_a_broadcast",
        ),
        pytest.param(
            lambda d, s: jnp.broadcast_to(d[:, None].astype(jnp.uint8), s.shape),
            id="broadcast_then_convert",
        ),
        pytest.param(lambda d, s: jnp.tile(d[:, None], (1, s.shape[1])), id="tile"),
        pytest.param(  # int8 wraps d + 256 back into d: the broadcast operand is not the index
            lambda d, s: (
                jnp.broadcast_to((d + 256)[:, None], s.shape).astype(jnp.int8).astype(jnp.int32)
            ),
            id="broadcast_then_narrowing_convert",
        ),
    ],
)
def test_expanded_index_results_match_the_per_element_scatter(make):
    """Whatever path the index takes (found at trace time or not), the values are those of
    the per-element scatter of the materialized index."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((20, 6), np.float32))
    dst = jnp.asarray(rng.integers(0, 20, 40), jnp.int32)
    s = jnp.asarray(rng.standard_normal((40, 6), np.float32))
    index = np.asarray(make(dst, s))
    for reduce in ("sum", "mean", "amax", "amin", "prod"):
        got = jax.jit(
            lambda x, d, s, reduce=reduce: jgather.scatter_reduce(x, 0, make(d, s), s, reduce)
        )(x, dst, s)
        want = ref_scatter_reduce(np.asarray(x), 0, index, np.asarray(s), reduce)
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=1e-5, err_msg=reduce)


def test_narrowing_conversion_after_a_broadcast_is_honoured_under_jit():
    """The trace-time probe stops at a conversion that changes values: int8 wraps 260 into
    4, so row 4 is written, under jit as eagerly (the probe must not read 260 through it)."""
    d = jnp.array([260, 1, 2])

    def f(d):
        index = jnp.broadcast_to(d[:, None], (3, 4)).astype(jnp.int8).astype(jnp.int32)
        return jgather.scatter_add(jnp.zeros((5, 4)), 0, index, jnp.ones((3, 4)), mode="drop")

    expected = np.zeros((5, 4), np.float32)
    expected[[4, 1, 2]] = 1
    np.testing.assert_array_equal(f(d), expected)
    np.testing.assert_array_equal(jax.jit(f)(d), expected)


def _normalized(text: str) -> str:
    """The entry computation and the computations it calls, without names and metadata."""
    text = re.sub(r", metadata=\{[^}]*\}", "", text)
    text = re.sub(r"%[\w.\-]+", "%_", text)
    return "\n".join(line for line in text.splitlines() if line.startswith("  "))


def test_expanded_scatter_into_zeros_compiles_to_segment_sums_program():
    """torch's graph aggregation, ``zeros.scatter_add_(0, dst[:, None].expand(E, F), msg)``,
    written with jgather inside jit, is the very program of ``jax.ops.segment_sum``."""
    v, e, f = 1000, 4096, 64

    def jg(dst, msg):
        index = jnp.broadcast_to(dst[:, None], msg.shape)
        return jgather.scatter_add(jnp.zeros((v, f)), 0, index, msg, mode="promise_in_bounds")

    def seg(dst, msg):
        return jax.ops.segment_sum(msg, dst, num_segments=v)

    avals = (i32(e), f32(e, f))
    assert _normalized(_hlo(jg, *avals)) == _normalized(_hlo(seg, *avals))
    # The default mode too: dim 0 with no leading axes, so XLA's own drop of out-of-range
    # keys is the drop torch's semantics under jit need; nothing is added.

    def jg_default(dst, msg):
        index = jnp.broadcast_to(dst[:, None], msg.shape)
        return jgather.scatter_add(jnp.zeros((v, f)), 0, index, msg)

    assert _normalized(_hlo(jg_default, *avals)) == _normalized(_hlo(seg, *avals))


def test_histogram_compiles_to_segment_sums_program():
    """A 1-D ``scatter_add`` into zeros (a histogram) is ``jax.ops.segment_sum``'s program."""

    def jg(i, v):
        return jgather.scatter_add(jnp.zeros(1000), 0, i, v)

    def seg(i, v):
        return jax.ops.segment_sum(v, i, num_segments=1000)

    avals = (i32(100_000), f32(100_000))
    assert _normalized(_hlo(jg, *avals)) == _normalized(_hlo(seg, *avals))


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod", "set"])
def test_gradients_of_the_trace_time_whole_rows_path(reduce):
    """Gradients through the whole-rows path (index broadcast inside jit) equal those of the
    per-element path (the same index materialized), for input and src ('prod': input only,
    as everywhere: JAX has no src gradient of a multiplicative scatter with duplicates)."""
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((20, 6), np.float32))
    dst = jnp.asarray(rng.integers(0, 20, 40), jnp.int32)
    s = jnp.asarray(rng.standard_normal((40, 6), np.float32))
    index = np.ascontiguousarray(np.broadcast_to(np.asarray(dst)[:, None], (40, 6)))

    def op(x, i, s):
        if reduce == "set":
            return jgather.scatter(x, 0, i, s)
        return jgather.scatter_reduce(x, 0, i, s, reduce)

    def rows(x, s):
        return (op(x, jnp.broadcast_to(dst[:, None], s.shape), s) ** 2).sum()

    def elements(x, s):
        return (op(x, jnp.asarray(index), s) ** 2).sum()

    argnums = (0,) if reduce == "prod" else (0, 1)
    got = jax.jit(jax.grad(rows, argnums=argnums))(x, s)
    want = jax.grad(elements, argnums=argnums)(x, s)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_embedding_bag_sums_short_bags_slot_by_slot():
    """On XLA:CPU, short bags sum slot by slot (row gathers added to a running total): a
    2-D input compiles with no scatter, offsets get a run-time test of whether every bag
    fits (one conditional). Values, vmap and gradients are the same bits as the scatter
    program bags that do not fit take (forced here by allowing no slots). Every case is one
    output of one jitted function (one compile a program)."""
    from jgather._embedding import _slots

    rng = np.random.default_rng(6)
    index = jnp.asarray(rng.integers(-1, 30, (6, 5)), jnp.int32)  # -1: dropped under jit
    even = np.arange(0, 30, 5)  # 30 entries: 5 slots, all full
    ragged = np.array([0, 3, 3, 10, 17, 22, 26])  # 7 bags of 3, 0, 7, 7, 5, 4, 4: 8 slots
    too_long = np.array([0, 1, 2, 3, 4, 5])  # 6 bags: the last holds 25 entries
    assert _slots.slot_cap(30, 6) == 5 and _slots.slot_cap(30, 7) == 8
    fits = [
        bool(_slots.slots(jnp.asarray(o), 30, len(o), _slots.slot_cap(30, len(o)))[2])
        for o in (even, ragged, too_long)
    ]
    assert fits == [True, True, False]  # which branch each takes at run time
    # float32 here; bfloat16 bags on this path are compared with torch bit for bit in
    # tests/test_embedding.py (test_low_precision_sums_round_as_torch: bags of 20).
    weights = [jnp.asarray(rng.standard_normal((30, 8)), jnp.float32)]
    psw = rng.standard_normal((6, 5))

    def two_d_sum(w, i):
        return jgather.embedding_bag(i, w, mode="sum", per_sample_weights=psw.astype(w.dtype))

    def two_d_mean(w, i):
        return jgather.embedding_bag(i, w, mode="mean", padding_idx=3)

    def offsets_mean(w, i, o):
        return jgather.embedding_bag(i.reshape(-1), w, o, mode="mean")

    def every(ws, i, offsets):
        out = []
        for w in ws:
            calls = [lambda w: two_d_sum(w, i), lambda w: two_d_mean(w, i)]
            calls += [lambda w, o=o: offsets_mean(w, i, o) for o in offsets]
            for f in calls:
                out.append(f(w))
                out.append(jax.grad(lambda w, f=f: f(w).astype(jnp.float32).sum())(w))
            batched = jax.vmap(offsets_mean, (None, 0, None))
            out.append(batched(w, jnp.stack([i, i[::-1]]), offsets[1]))
        return out

    args = (weights, index, [jnp.asarray(o) for o in (even, ragged, too_long)])
    assert _count(_hlo(two_d_sum, weights[0], index), "scatter") == 0
    assert _count(_hlo(offsets_mean, weights[0], index, args[2][0]), "conditional") == 1
    slot_by_slot = jax.jit(every)(*args)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_slots, "MAX_SLOTS", 0)
        jax.clear_caches()
        assert _count(_hlo(two_d_sum, weights[0], index), "scatter") >= 1
        scattered = jax.jit(every)(*args)
    jax.clear_caches()
    assert len(slot_by_slot) == 2 * 5 + 1
    for k, (a, b) in enumerate(zip(slot_by_slot, scattered, strict=True)):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32), str(k))
