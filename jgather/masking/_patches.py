"""Images and videos to patch tokens and back, in MAE's token layout.

MAE (He et al., 2021) cuts NCHW images into ``p x q`` patches and flattens each patch as
``(p, q, c)``: the row inside the patch, then the column, then the channel, fastest last (its
``'nchpwq->nhwpqc'`` rearrangement). Tokens run over the patch grid row by row. jgather takes
channels-last images (NHWC, as JAX models use), so the same layout is a plain reshape and one
transpose: ``[N, h, p, w, q, C] -> [N, h, w, p, q, C]``. Targets and decoder weights are then
interchangeable with the reference. NCHW input (a torch port) is read with
``channels_first=True`` and gives MAE's tokens exactly; with the default, an input that looks
channels-first is an error rather than a silent misreading (an NCHW ``[2, 4, 32, 32]`` read as
NHWC is an image 4 pixels high with 32 channels). Videos ``[N, T, H, W, C]`` are cut into
``u x p x q`` tubelets (VideoMAE / MAE-ST): tokens run over ``(t, h, w)``, each flattened as
``(u, p, q, c)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jgather import _checks
from jgather.masking._placement import batch_sharding, reshape_batch


def _check_layout(fn: str, channels_first: Any) -> bool | None:
    """True (NCHW / NCTHW), False (NHWC / NTHWC) or None (channels last, guarded)."""
    if channels_first is None:
        return None
    return _checks.static_bool(fn, "channels_first", channels_first)


def _looks_channels_first(shape: tuple[int, ...], q: int) -> bool:
    """A few channels on axis 1 and a wide last axis that is no usual channel count."""
    return shape[1] in (1, 3, 4) and shape[-1] > q and shape[-1] not in (1, 3, 4)


@functools.partial(jax.jit, static_argnames=("patch", "tubelet", "channels_first"))
def _patchify(
    imgs: jax.Array, *, patch: tuple[int, int], tubelet: int | None, channels_first: bool
) -> jax.Array:
    p, q = patch
    if channels_first:  # NCHW / NCTHW -> channels last; XLA folds it into the one transpose
        imgs = jnp.moveaxis(imgs, 1, -1)
    sharding = batch_sharding(imgs)
    if tubelet is None:
        n, hh, ww, c = imgs.shape
        h, w = hh // p, ww // q
        x = reshape_batch(imgs, (n, h, p, w, q, c), sharding).transpose(0, 1, 3, 2, 4, 5)
        return reshape_batch(x, (n, h * w, p * q * c), sharding)
    u = tubelet
    n, tt, hh, ww, c = imgs.shape
    t, h, w = tt // u, hh // p, ww // q
    x = reshape_batch(imgs, (n, t, u, h, p, w, q, c), sharding).transpose(0, 1, 3, 5, 2, 4, 6, 7)
    return reshape_batch(x, (n, t * h * w, u * p * q * c), sharding)


def patchify(
    imgs: jax.Array,
    patch_size: int | tuple[int, int],
    *,
    tubelet_size: int | None = None,
    channels_first: bool | None = None,
) -> jax.Array:
    """Cuts images (or videos) into flattened patch tokens in MAE's layout.

    Mirrors MAE's ``patchify`` (``'nchpwq->nhwpqc'`` on NCHW): token ``i * w + j`` is the
    patch in grid row ``i``, column ``j``, flattened as ``(p, q, c)``. For video, tokens run
    over ``(t, h, w)`` and flatten as ``(u, p, q, c)`` (MAE-ST / VideoMAE). The input is
    channels-last by default; ``channels_first=True`` reads NCHW (NCTHW) and gives exactly
    MAE's tokens for the same array.

    Args:
      imgs: [N, H, W, C] images, or [N, T, H, W, C] videos with ``tubelet_size``; with
        ``channels_first=True``, [N, C, H, W] or [N, C, T, H, W].
      patch_size: static int ``p`` or pair ``(p, q)``: patch height and width in pixels; must
        divide ``H`` and ``W``. The grid need not be square.
      tubelet_size: static frames per tubelet ``u`` (video only; must divide ``T``).
      channels_first: static layout. ``None`` (default): channels last, but an input that
        looks channels-first (1, 3 or 4 entries on axis 1 and a last axis wider than the
        patch that is not 1, 3 or 4) is a ``ValueError``; ``True``: NCHW / NCTHW; ``False``:
        channels last, no check.

    Returns:
      [N, h * w, p * q * C] with ``h = H / p``, ``w = W / q``; for video
      [N, t * h * w, u * p * q * C] with ``t = T / u``.

    Raises:
      ValueError: wrong rank, a patch size that does not divide the image (or clip) in the
        layout read, or (``channels_first=None``) an input that looks channels-first.
      TypeError: ``patch_size`` is not an int or a pair of ints; ``channels_first`` not a
        bool or None.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> imgs = jnp.arange(2 * 4 * 6 * 3.0).reshape(2, 4, 6, 3)
      >>> tokens = jgather.patchify(imgs, 2)
      >>> tokens.shape
      (2, 6, 12)
      >>> bool(jnp.all(jgather.unpatchify(tokens, 2, 3, grid=(2, 3)) == imgs))
      True
      >>> nchw = jnp.transpose(imgs, (0, 3, 1, 2))  # a torch-layout batch [2, 3, 4, 6]
      >>> bool(jnp.all(jgather.patchify(nchw, 2, channels_first=True) == tokens))
      True
    """
    fn = "patchify"
    p, q = _checks.static_grid(fn, "patch_size", patch_size, 2)
    channels_first = _check_layout(fn, channels_first)
    imgs = _checks.as_array(
        fn, "imgs", imgs, hint="pass images [N, H, W, C] or videos [N, T, H, W, C]"
    )
    video = tubelet_size is not None
    layout = ("NCTHW" if video else "NCHW") if channels_first else ("NTHWC" if video else "NHWC")
    if not video:
        if imgs.ndim != 4:
            hint = " (for videos pass tubelet_size=)" if imgs.ndim == 5 else ""
            raise ValueError(
                f"{fn}: imgs must be {layout} [N, {', '.join(layout[1:])}]{hint}, got shape "
                f"{tuple(imgs.shape)}."
            )
    else:
        tubelet_size = _checks.static_int(fn, "tubelet_size", tubelet_size, minimum=1)
        if imgs.ndim != 5:
            raise ValueError(
                f"{fn}: with tubelet_size, imgs must be a video {layout} "
                f"[N, {', '.join(layout[1:])}], got shape {tuple(imgs.shape)}."
            )
    if channels_first is None and _looks_channels_first(imgs.shape, q):
        first, last = ("NCTHW", "NTHWC") if video else ("NCHW", "NHWC")
        raise ValueError(
            f"{fn}: imgs of shape {tuple(imgs.shape)} look channels-first ({first}: "
            f"{imgs.shape[1]} channels), but patchify reads {last} by default, which would "
            f"give {imgs.shape[-1]} channels. Pass channels_first=True for {first} input (as "
            f"MAE's torch patchify takes), or channels_first=False to confirm {last}."
        )
    # Channels-last view of the shape, to check sizes in the layout that was read.
    shape = (imgs.shape[0], *imgs.shape[2:], imgs.shape[1]) if channels_first else imgs.shape
    if video:
        assert tubelet_size is not None  # video means tubelet_size was given (checked above)
        if shape[1] % tubelet_size:
            raise ValueError(
                f"{fn}: tubelet_size={tubelet_size} must divide the number of frames "
                f"T={shape[1]} (imgs {tuple(imgs.shape)} read as {layout})."
            )
        spatial = shape[2:4]
    else:
        spatial = shape[1:3]
    if spatial[0] % p or spatial[1] % q:
        other = "channels_first=True" if not channels_first else "channels_first=False"
        raise ValueError(
            f"{fn}: patch_size {(p, q)} must divide the image size (H, W) = {tuple(spatial)} "
            f"of imgs {tuple(imgs.shape)} read as {layout}; if that is not the layout, pass "
            f"{other}; otherwise crop or pad the images first."
        )
    return _patchify(imgs, patch=(p, q), tubelet=tubelet_size, channels_first=bool(channels_first))


@functools.partial(jax.jit, static_argnames=("patch", "channels", "grid", "tubelet", "first"))
def _unpatchify(
    x: jax.Array,
    *,
    patch: tuple[int, int],
    channels: int,
    grid: tuple[int, ...],
    tubelet: int | None,
    first: bool,
) -> jax.Array:
    p, q = patch
    c = channels
    n = x.shape[0]
    sharding = batch_sharding(x)
    if tubelet is None:
        h, w = grid
        imgs = reshape_batch(x, (n, h, w, p, q, c), sharding).transpose(0, 1, 3, 2, 4, 5)
        imgs = reshape_batch(imgs, (n, h * p, w * q, c), sharding)
        return jnp.moveaxis(imgs, -1, 1) if first else imgs
    t, h, w = grid
    u = tubelet
    vids = reshape_batch(x, (n, t, h, w, u, p, q, c), sharding).transpose(0, 1, 4, 2, 5, 3, 6, 7)
    vids = reshape_batch(vids, (n, t * u, h * p, w * q, c), sharding)
    return jnp.moveaxis(vids, -1, 1) if first else vids


def unpatchify(
    x: jax.Array,
    patch_size: int | tuple[int, int],
    channels: int,
    *,
    grid: Sequence[int] | None = None,
    tubelet_size: int | None = None,
    channels_first: bool | None = None,
) -> jax.Array:
    """Puts patch tokens back into images (or videos): the inverse of ``patchify``.

    Mirrors MAE's ``unpatchify``: channels-last output by default, NCHW (NCTHW) as MAE's with
    ``channels_first=True``. The token count alone does not say
    the grid shape unless it is square, so non-square grids (and every video) take ``grid``.

    Args:
      x: [N, L, p * q * C] tokens (or [N, L, u * p * q * C] for video).
      patch_size: static int ``p`` or pair ``(p, q)``, as given to ``patchify``.
      channels: static number of channels ``C``.
      grid: static ``(h, w)`` patches per column and row (default: square, ``h = w =
        sqrt(L)``); for video ``(t, h, w)``, required.
      tubelet_size: static frames per tubelet ``u`` (video only).
      channels_first: static output layout: ``True`` for NCHW / NCTHW; ``None`` or ``False``
        for channels last (the tokens alone say nothing about the input's layout).

    Returns:
      [N, h * p, w * q, C] images, or [N, t * u, h * p, w * q, C] videos; with
      ``channels_first=True`` [N, C, h * p, w * q] or [N, C, t * u, h * p, w * q].

    Raises:
      ValueError: the token count or width does not match the grid, patch size and channels;
        a non-square token count without ``grid``; a video without ``grid``.
      TypeError: ``channels_first`` is not a bool or None.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> tokens = jnp.zeros((1, 16, 4 * 4 * 3))
      >>> jgather.unpatchify(tokens, 4, 3).shape
      (1, 16, 16, 3)
    """
    fn = "unpatchify"
    p, q = _checks.static_grid(fn, "patch_size", patch_size, 2)
    first = bool(_check_layout(fn, channels_first))
    channels = _checks.static_int(fn, "channels", channels, minimum=1)
    x = _checks.as_array(fn, "x", x, hint="pass tokens [N, L, patch_dim]")
    if x.ndim != 3:
        raise ValueError(f"{fn}: x must be [N, L, patch_dim], got shape {tuple(x.shape)}.")
    _, length, width = x.shape
    if grid is not None and not isinstance(grid, tuple | list):
        want = "(t, h, w)" if tubelet_size is not None else "(h, w)"
        raise TypeError(
            f"{fn}: grid must be a tuple {want} of patch counts, got {grid!r}; e.g. "
            f"grid=({grid!r}, {grid!r}) for a square grid, or leave it out."
        )
    if tubelet_size is not None:
        tubelet_size = _checks.static_int(fn, "tubelet_size", tubelet_size, minimum=1)
        if grid is None or len(grid) != 3:
            raise ValueError(
                f"{fn}: video tokens need grid=(t, h, w) (tubelets per clip, patches per "
                f"column and row), got grid={grid!r}."
            )
    elif grid is None:
        side = math.isqrt(length)
        if side * side != length:
            raise ValueError(
                f"{fn}: L={length} tokens is not a square grid; pass grid=(h, w) with "
                f"h * w == {length}."
            )
        grid = (side, side)
    elif len(grid) != 2:
        raise ValueError(f"{fn}: image tokens need grid=(h, w), got grid={grid!r}.")
    grid = tuple(_checks.static_int(fn, f"grid[{i}]", g, minimum=1) for i, g in enumerate(grid))
    if math.prod(grid) != length:
        raise ValueError(f"{fn}: grid {grid} holds {math.prod(grid)} tokens but x has L={length}.")
    expected = (tubelet_size or 1) * p * q * channels
    if width != expected:
        raise ValueError(
            f"{fn}: token width {width} does not match patch_size {(p, q)}, channels={channels}"
            + (f" and tubelet_size={tubelet_size}" if tubelet_size else "")
            + f" (expected {expected})."
        )
    return _unpatchify(
        x, patch=(p, q), channels=channels, grid=grid, tubelet=tubelet_size, first=first
    )
