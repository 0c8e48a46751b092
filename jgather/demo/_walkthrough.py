"""The demo's printed walk-through: torch.gather forwards and backwards, then MAE's example.

Each function returns the lines to print, so the command line prints them and the tests read
them without capturing stdout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jgather._explain import explain, infer_gather
from jgather._gather import gather
from jgather.masking import random_masking

#: The tokens MAE's 16-token example keeps, in encoder order.
MAE_EXAMPLE_KEEP = (10, 12, 4, 13)


def _show(label: str, array: object) -> list[str]:
    body = np.array2string(np.asarray(array), separator=", ", max_line_width=96)
    return [f"  {label}:", *(f"    {line}".rstrip() for line in body.splitlines())]


def gather_walkthrough() -> list[str]:
    """The ``dim=1`` example on ``arange(24).reshape(2, 3, 4)``, forwards and backwards.

    Forwards: ``jgather.gather(input, 1, index)`` with an index that picks row 0 and then row
    2 of every ``3 x 4`` slice, and ``explain`` for one output cell. Backwards:
    ``infer_gather(input, out)`` lists every ``(dim, index)`` that reproduces ``out``.

    Returns:
      The printed lines.

    Example:
      >>> lines = gather_walkthrough()
      >>> "  explain: out[0, 1, 0] = input[0, index[0, 1, 0], 0] = input[0, 2, 0] = 8" in lines
      True
    """
    x = jnp.arange(24).reshape(2, 3, 4)
    index = jnp.array([[[0, 0, 0, 0], [2, 2, 2, 2]], [[0, 0, 0, 0], [2, 2, 2, 2]]])
    out = gather(x, 1, index)
    lines = ["1. torch.gather forwards: the dim=1 example on arange(24).reshape(2, 3, 4)"]
    lines += _show("input = arange(24).reshape(2, 3, 4)", x)
    lines += _show("index", index)
    lines += _show("out = jgather.gather(input, 1, index)", out)
    lines.append("  rule for dim=1: out[i][j][k] = input[i][index[i][j][k]][k]")
    lines.append(f"  explain: {explain(x, 1, index, (0, 1, 0))}")
    lines.append("")
    lines.append("2. backwards: jgather.infer_gather(input, out) recovers dim and index")
    for dim, found in infer_gather(x, out):
        lines.append(f"  dim={dim}")
        lines += _show("index", found)
    return lines


def mae_walkthrough(key: jax.Array) -> list[str]:
    """MAE's 16-token example: ``random_masking`` of ``arange(64).reshape(1, 16, 4)``.

    First with noise whose four smallest entries sit at tokens 10, 12, 4 and 13, so
    ``argsort(noise)`` starts with exactly those ids and the example keeps those patches (as
    MAE's code does for that noise); then with noise drawn from ``key``. Each time
    ``infer_gather`` reads the kept tokens back off ``x_masked``.

    Args:
      key: PRNG key for the second masking.

    Returns:
      The printed lines.

    Example:
      >>> lines = mae_walkthrough(jax.random.key(0))
      >>> "  infer_gather(x, x_masked): dim=1, kept tokens [10, 12, 4, 13]" in lines
      True
    """
    tokens = jnp.arange(64).reshape(1, 16, 4)
    noise = np.linspace(0.5, 1.0, 16, dtype=np.float32)
    noise[list(MAE_EXAMPLE_KEEP)] = [0.0, 0.1, 0.2, 0.3]
    keep = ", ".join(map(str, MAE_EXAMPLE_KEEP))
    lines = ["3. MAE's 16-token example: random_masking of x = arange(64).reshape(1, 16, 4)"]
    lines.append(f"  a) noise whose smallest entries are at tokens {keep} (mask_ratio 0.75):")
    masked = random_masking(None, tokens, 0.75, noise=jnp.asarray(noise)[None])
    lines += _show("x_masked", masked.x_masked)
    lines += _show("mask (0 keep, 1 remove)", masked.mask)
    lines += _show("ids_restore", masked.ids_restore)
    lines += _kept(tokens, masked.x_masked)
    lines.append("  b) noise drawn from --seed (mask_ratio 0.75):")
    masked = random_masking(key, tokens, 0.75)
    lines += _show("x_masked", masked.x_masked)
    lines += _show("mask", masked.mask)
    lines += _show("ids_restore", masked.ids_restore)
    lines += _kept(tokens, masked.x_masked)
    return lines


def _kept(tokens: jax.Array, x_masked: jax.Array) -> list[str]:
    return [
        f"  infer_gather(x, x_masked): dim={dim}, kept tokens {np.asarray(found[0, :, 0]).tolist()}"
        for dim, found in infer_gather(tokens, x_masked)
    ]
