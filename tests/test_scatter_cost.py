"""Scatters cost O(index) beyond the output buffer: structural checks, not timings.

A donated 10M-element input written at 5 positions must compile to a program whose
temporaries are index-sized, for every scatter flavour (plain 'set' with last-write-wins,
every reduction with include_self=False, 'mean', reduced-precision sums). Before, these
built input-sized temporaries (a full-size winner array, count array or identity array).
Only abstract shapes are compiled; nothing of 10M elements is allocated.
"""

import jax
import jax.numpy as jnp
import pytest
from pipelines import users_compile

import jgather

BIG = 10_000_000
SMALL = 5

CASES = {
    "scatter": lambda x, i, s: jgather.scatter(x, 0, i, s),
    "scatter_scalar": lambda x, i, s: jgather.scatter(x, 0, i, 1.0),
    "scatter_add": lambda x, i, s: jgather.scatter_add(x, 0, i, s),
    **{
        f"{r}_excl": (
            lambda x, i, s, r=r: jgather.scatter_reduce(x, 0, i, s, r, include_self=False)
        )
        for r in ("sum", "prod", "mean", "amax", "amin")
    },
    "mean": lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "mean"),
}


def _temp_bytes(fn, dtype, shape=(BIG,), index_shape=(SMALL,)):
    x = jax.ShapeDtypeStruct(shape, dtype)
    i = jax.ShapeDtypeStruct(index_shape, jnp.int32)
    s = jax.ShapeDtypeStruct(index_shape, dtype)
    compiled = users_compile(jax.jit(fn, donate_argnums=0).lower(x, i, s))
    stats = compiled.memory_analysis()
    if stats is None:
        pytest.skip("this backend reports no memory analysis")
    return stats.temp_size_in_bytes


@pytest.mark.parametrize("name", CASES)
def test_temporaries_grow_with_the_index_not_the_input(name):
    temp = _temp_bytes(CASES[name], jnp.float32)
    assert temp < 64 * 1024, f"{name}: {temp} bytes of temporaries for a 5-element index"


def _equations(jaxpr):
    """Every equation of ``jaxpr`` and of the jaxprs nested in its equations' parameters."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(sub, "eqns"):
                    yield from _equations(sub)


# Primitives allowed to produce an input-sized value: the scatters writing into the input,
# the call wrappers around them and free reshapes of the input.
_INPUT_SIZED_OK = {"scatter", "scatter-add", "scatter_add", "scatter-mul", "scatter_mul"}
_INPUT_SIZED_OK |= {"scatter-min", "scatter_min", "scatter-max", "scatter_max", "reshape"}
_INPUT_SIZED_OK |= {"pjit", "jit", "custom_jvp_call", "custom_vmap_call", "cond"}


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_reduced_precision_sums_stay_index_sized(dtype):
    """Checked on the program jgather emits (its jaxpr): XLA's CPU backend itself computes
    every bf16/fp16 scatter in float32, converting the whole operand, which GPU and TPU do
    not; so compiled memory on CPU would measure XLA, not jgather."""
    x = jax.ShapeDtypeStruct((BIG,), dtype)
    i = jax.ShapeDtypeStruct((SMALL,), jnp.int32)
    s = jax.ShapeDtypeStruct((SMALL,), dtype)
    for case in ("scatter_add", "sum_excl", "mean", "scatter", "amax_excl"):
        jaxpr = jax.make_jaxpr(CASES[case])(x, i, s).jaxpr
        for eqn in _equations(jaxpr):
            for out in eqn.outvars:
                if getattr(out.aval, "size", 0) >= BIG:
                    assert eqn.primitive.name in _INPUT_SIZED_OK, (case, str(eqn)[:200])
                    assert out.aval.dtype == dtype, (case, str(eqn)[:200])


def test_whole_row_scatters_stay_index_sized():
    """2-D input [1M, 10] with the index broadcast along the rows (the expand idiom)."""
    for name in ("scatter", "mean", "amax_excl"):
        temp = _temp_bytes(CASES[name], jnp.float32, (BIG // 10, 10), (SMALL, 10))
        assert temp < 64 * 1024, f"{name}: {temp} bytes"
