"""MaskGIT's mask-ratio schedules and variable-ratio masking."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import shuffled_count
from jgather.masking._placement import batch_sharding, to_batch_sharding

# --------------------------------------------------------------------------------------------
# MaskGIT schedules and variable-ratio masking.
# --------------------------------------------------------------------------------------------

_POWERS = {"linear": 1.0, "uniform": 1.0, "square": 2.0, "cubic": 3.0, "sqrt": 0.5}
_SCHEDULES = ("cosine", "linear", "uniform", "square", "cubic", "sqrt", "log", "exp", "pow<e>")
_EPS = 1e-6  # MaskGIT clamps the mask ratio into [1e-6, 1].


def _schedule_power(fn: str, name: str) -> float | None:
    if name in _POWERS:
        return _POWERS[name]
    if name.startswith("pow"):
        try:
            e = float(name[3:])
        except ValueError:
            e = float("nan")
        if not (math.isfinite(e) and e > 0):
            raise ValueError(f"{fn}: schedule {name!r} needs a positive exponent, e.g. 'pow2.5'.")
        return e
    return None


def _check_schedule(fn: str, name: Any, num_tokens: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(
            f"{fn}: the schedule name must be a str, one of {_SCHEDULES}; got {name!r}."
        )
    if name not in ("cosine", "log", "exp") and _schedule_power(fn, name) is None:
        raise ValueError(f"{fn}: unknown schedule {name!r}; expected one of {_SCHEDULES}.")
    if name in ("log", "exp"):
        if num_tokens is None:
            raise ValueError(
                f"{fn}: the {name!r} schedule depends on the number of tokens; pass "
                f"num_tokens=L (MaskGIT's total_unknown)."
            )
        _checks.static_int(fn, "`num_tokens`", num_tokens, minimum=2)


def _schedule(name: str, r: jax.Array, num_tokens: int | None) -> jax.Array:
    if name == "cosine":
        ratio = jnp.cos(math.pi / 2.0 * r)
    elif name == "log":
        assert num_tokens is not None  # _check_schedule requires it for 'log'
        ratio = -jnp.log2(r) / math.log2(num_tokens)
    elif name == "exp":
        assert num_tokens is not None  # _check_schedule requires it for 'exp'
        ratio = 1.0 - jnp.exp2(-math.log2(num_tokens) * (1.0 - r))
    else:
        power = _schedule_power("mask_schedule", name)
        assert power is not None  # _check_schedule rejected names without a power
        ratio = 1.0 - r**power
    return jnp.clip(ratio, _EPS, 1.0)


def mask_schedule(name: str, ratio: ArrayLike, *, num_tokens: int | None = None) -> jax.Array:
    """MaskGIT's mask-ratio schedules: map ``r`` in ``[0, 1]`` to the fraction of tokens masked.

    Mirrors MaskGIT's ``schedule`` (``maskgit/libml/mask_schedule.py``); the formulas follow
    the example.

    Args:
      name: ``'cosine'`` (MaskGIT's choice), ``'linear'``, ``'square'``, ``'cubic'``,
        ``'sqrt'``, ``'pow<e>'`` (e.g. ``'pow2.5'``), ``'log'`` or ``'exp'``.
      ratio: ``r``, a float or array of floats in ``[0, 1]``.
      num_tokens: ``L``, required by ``log`` and ``exp`` (at least 2).

    Returns:
      The mask ratio, same shape as ``ratio``, float, in ``[1e-6, 1]``.

    Raises:
      TypeError: for a non-str name or a non-numeric ``ratio``.
      ValueError: for an unknown name, or ``log``/``exp`` without ``num_tokens >= 2``.

    Example:
      >>> from jgather import mask_schedule
      >>> [round(float(mask_schedule("cosine", r)), 4) for r in (0.0, 0.5, 1.0)]
      [1.0, 0.7071, 0.0]
      >>> float(mask_schedule("square", 0.5))
      0.75

    The schedules (the paper's study of mask scheduling functions) are non-increasing in
    ``r``, equal 1 at ``r = 0`` (``exp``: ``1 - 1/L``) and reach the floor at ``r = 1``; like
    MaskGIT the result is clamped into ``[1e-6, 1]``:

    * ``cosine``: ``cos(pi/2 * r)`` (MaskGIT's choice);
    * ``linear`` (MaskGIT's ``uniform``): ``1 - r``;
    * ``square``: ``1 - r**2``; ``cubic``: ``1 - r**3``; ``sqrt``: ``1 - r**0.5``;
      ``pow<e>`` (e.g. ``pow2.5``): ``1 - r**e``;
    * ``log``: ``-log2(r) / log2(L)``; ``exp``: ``1 - 2**(-log2(L) * (1 - r))``, where ``L`` is
      ``num_tokens`` (MaskGIT's ``total_unknown``).

    In training ``r`` is drawn uniformly from ``[0, 1)`` (see :func:`variable_ratio_masking`); in
    iterative decoding it is ``t / T``.

    References:
      Chang et al., "MaskGIT: Masked Generative Image Transformer",
      https://arxiv.org/abs/2202.04200
    """
    fn = "mask_schedule"
    _check_schedule(fn, name, num_tokens)
    r = _checks.as_array(fn, "ratio", ratio, hint="pass a float or an array of floats in [0, 1]")
    if not (jnp.issubdtype(r.dtype, jnp.number) or r.dtype == jnp.bool_):
        raise TypeError(f"{fn}: ratio must be numeric, got dtype {r.dtype}.")
    r = jnp.asarray(r)
    if not jnp.issubdtype(r.dtype, jnp.floating):
        r = r.astype(jnp.float32)
    return _schedule(name, r, num_tokens)


class VariableRatioMask(NamedTuple):
    """Result of :func:`variable_ratio_masking`.

    Attributes:
      mask: [N, L] bool, True = masked.
      num_masked: [N] int32, the number of True in each row of ``mask``.
      r: [N] float32, the schedule input of each sample (drawn, or as given).
    """

    mask: jax.Array
    num_masked: jax.Array
    r: jax.Array


@functools.partial(jax.jit, static_argnames=("batch_size", "num_tokens", "schedule"))
def _variable_ratio_masking(
    key: jax.Array, r: jax.Array | None, batch_size: int, num_tokens: int, schedule: str
) -> VariableRatioMask:
    def one(k: jax.Array, r_given: jax.Array | None) -> VariableRatioMask:
        k_r, k_pos = jax.random.split(k)
        r_i = jax.random.uniform(k_r, (), jnp.float32) if r_given is None else r_given
        ratio = _schedule(schedule, r_i, num_tokens)
        count = jnp.clip(jnp.ceil(ratio * num_tokens), 1, num_tokens).astype(jnp.int32)
        return VariableRatioMask(shuffled_count(k_pos, num_tokens, count), count, r_i)

    sharding = batch_sharding(key, r)
    keys = per_sample_keys(key, batch_size, sharding)
    if r is None:
        return jax.vmap(lambda k: one(k, None))(keys)
    r = to_batch_sharding(r.astype(jnp.float32), sharding)
    # A traced NaN is treated as r = 1, the schedule's floor: one token masked, never zero.
    r = jnp.where(jnp.isnan(r), jnp.float32(1.0), jnp.clip(r, 0.0, 1.0))
    return jax.vmap(one)(keys, r)


def variable_ratio_masking(
    key: ArrayLike,
    batch_size: int,
    num_tokens: int,
    *,
    schedule: str = "cosine",
    r: ArrayLike | None = None,
) -> VariableRatioMask:
    """MaskGIT-style masking with a per-sample masked count drawn through a schedule.

    Mirrors MaskGIT training: each sample draws ``r ~ U[0, 1)`` from its own key, turns it into
    a mask ratio with :func:`mask_schedule` (cosine by default, as MaskGIT), and masks

        ``num_masked = clip(ceil(mask_schedule(schedule, r) * L), 1, L)``

    tokens at uniformly random positions, computed in float32. The ceiling is the MaskGIT
    paper's rule (it masks ``ceil(gamma(r) * N)`` tokens); the clip to ``[1, L]`` is only a
    guard: the schedule is clamped into ``[1e-6, 1]``, so the ceiling is already in range. The mask
    has a fixed shape [N, L]; only the count varies per sample, so it jit-compiles once.

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys.
      batch_size: number of samples ``N`` (static).
      num_tokens: ``L``, tokens per sample (static).
      schedule: a :func:`mask_schedule` name (static).
      r: optional [N] schedule inputs in ``[0, 1]`` replacing the draw (e.g. ``t / T`` in
        iterative decoding); the positions are still drawn from the key. Concrete values
        outside ``[0, 1]`` (or NaN) are an error; traced values are clamped into ``[0, 1]``
        and a traced NaN counts as ``r = 1`` (one token masked), so every row masks at least
        one token. The returned ``r`` is the value used.

    Returns:
      A :class:`VariableRatioMask` ``(mask, num_masked, r)``: ``mask`` [N, L] bool (True =
      masked), ``num_masked`` [N] int32 and ``r`` [N] float32.

    Raises:
      TypeError: for traced or non-int ``batch_size``/``num_tokens``, a non-str schedule or a
        bad key.
      ValueError: for an unknown schedule, ``r`` of the wrong shape or out of range, or a key
        batch whose length is not ``batch_size``.

    Example:
      >>> import jax
      >>> from jgather import variable_ratio_masking
      >>> out = variable_ratio_masking(jax.random.key(0), 8, 24, schedule="cosine")
      >>> out.mask.shape, out.num_masked.shape
      ((8, 24), (8,))
      >>> bool((out.mask.sum(-1) == out.num_masked).all())
      True
      >>> r = jax.numpy.array([0.0, 1.0])  # cos(0) = 1 -> all 10; cos(pi/2) -> clipped to 1
      >>> variable_ratio_masking(jax.random.key(0), 2, 10, r=r).num_masked.tolist()
      [10, 1]

    Token order is whatever order the caller's ``L`` tokens have (row-major ``(h, w)`` for
    image tokens). Written for one sample, ``jax.vmap``-ed over the batch.

    References:
      Chang et al., "MaskGIT: Masked Generative Image Transformer",
      https://arxiv.org/abs/2202.04200
    """
    fn = "variable_ratio_masking"
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    num_tokens = _checks.static_int(fn, "`num_tokens`", num_tokens, minimum=1)
    _check_schedule(fn, schedule, max(num_tokens, 2))
    if schedule in ("log", "exp") and num_tokens < 2:
        raise ValueError(f"{fn}: the {schedule!r} schedule needs num_tokens >= 2.")
    if r is not None:
        if np.shape(r) != (batch_size,):
            raise ValueError(
                f"{fn}: `r` must have shape (batch_size,) = ({batch_size},), got {np.shape(r)}."
            )
        if not _checks.is_traced(r):
            r_np = np.asarray(r)
            if not ((r_np >= 0) & (r_np <= 1)).all():
                raise ValueError(f"{fn}: `r` must lie in [0, 1], got values outside it: {r_np}.")
            r = jnp.asarray(r_np, jnp.float32)
    key = check_key(fn, key, batch_size)
    return _variable_ratio_masking(key, r, batch_size, num_tokens, schedule)
