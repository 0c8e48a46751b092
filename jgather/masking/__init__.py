"""Masked-modeling token masking (``jgather.masking``): MAE and its family, patches, loss.

One module per family: ``_mae`` (MAE's ``random_masking``, ``apply_mask``), ``_unshuffle``,
``_permutation`` (the shared shuffle), ``_video`` (tube, running cell), ``_block`` (BEiT),
``_simmim``, ``_inverse_block`` (data2vec 2.0), ``_multiblock`` (I-JEPA, V-JEPA: ``_ijepa``,
``_vjepa``, ``_multiblock_common``), ``_boxes``
(boxes to masks), ``_apply_masks`` (JEPA's ``apply_masks`` and its inverse),
``_masked_tokens`` (VideoMAE's ``patches[mask]``), ``_patch_dropout``, ``_variable_ratio``
(MaskGIT), ``_per_sample`` (a ratio per sample in fixed shapes), ``_patches``, ``_loss``.
What the family shares: ``_keys`` (PRNG keys), ``_placement`` (batch placement on meshes),
``_arguments`` (argument checks), ``_take`` (moving token rows), ``_results`` (the results'
tuple behaviour).
Every name here is also re-exported flat from ``jgather``.

Every strategy here is a pure function of an explicit PRNG key:

* ``key`` comes first. It is either one key (new-style ``jax.random.key`` or legacy
  ``jax.random.PRNGKey``), which is split into one key per sample, or a batch of ``N`` keys, in
  which case sample ``i`` depends on ``keys[i]`` alone (it does not change when the batch grows,
  shrinks or is sharded).
* The arguments that fix shapes or counts (grid sizes, ratios, patch sizes) are static: they are
  validated in Python and passed to a ``jax.jit``-compiled core as static arguments, so a traced
  value is a clear ``TypeError`` rather than a silent recompilation per value.
* The core is written for one sample and ``jax.vmap``-ed over the batch.
* Masks are boolean ``[N, L]`` with ``True`` = masked (removed / to be predicted). Tokens are
  ordered row-major over the token grid: ``(h, w)`` for images and ``(t, h, w)`` for video, i.e.
  token ``l = (t * H + h) * W + w``, which is the order of ``patchify``'s output and of the
  reference implementations (VideoMAE, BEiT, SimMIM all flatten row-major).

A fixed-count mask (tube, running cell, SimMIM) can be turned into MAE's
``(x_masked, mask, ids_restore)`` triple with ``jgather.apply_mask``.

The algorithms are re-stated from the papers and the facts of their reference implementations
(counts, rounding, bounds); the facts each function follows are listed in its docstring.
"""

from jgather.masking._apply_masks import apply_masks as apply_masks
from jgather.masking._apply_masks import unapply_masks as unapply_masks
from jgather.masking._block import block_masking as block_masking
from jgather.masking._boxes import box_masks as box_masks
from jgather.masking._inverse_block import inverse_block_masking as inverse_block_masking
from jgather.masking._keys import example_keys as example_keys
from jgather.masking._loss import mae_loss as mae_loss
from jgather.masking._mae import MaskedTokens as MaskedTokens
from jgather.masking._mae import apply_mask as apply_mask
from jgather.masking._mae import random_masking as random_masking
from jgather.masking._masked_tokens import masked_ids as masked_ids
from jgather.masking._masked_tokens import take_masked as take_masked
from jgather.masking._multiblock import IJepaConfig as IJepaConfig
from jgather.masking._multiblock import MultiBlockMasks as MultiBlockMasks
from jgather.masking._multiblock import VJepaConfig as VJepaConfig
from jgather.masking._multiblock import multiblock_masking as multiblock_masking
from jgather.masking._patch_dropout import PatchDropoutOutput as PatchDropoutOutput
from jgather.masking._patch_dropout import patch_dropout as patch_dropout
from jgather.masking._patches import patchify as patchify
from jgather.masking._patches import unpatchify as unpatchify
from jgather.masking._per_sample import PaddedMaskedTokens as PaddedMaskedTokens
from jgather.masking._per_sample import random_masking_per_sample as random_masking_per_sample
from jgather.masking._per_sample import sample_mask_ratios as sample_mask_ratios
from jgather.masking._simmim import simmim_masking as simmim_masking
from jgather.masking._unshuffle import unshuffle as unshuffle
from jgather.masking._variable_ratio import VariableRatioMask as VariableRatioMask
from jgather.masking._variable_ratio import mask_schedule as mask_schedule
from jgather.masking._variable_ratio import variable_ratio_masking as variable_ratio_masking
from jgather.masking._video import running_cell_masking as running_cell_masking
from jgather.masking._video import tube_masking as tube_masking

__all__ = [
    "IJepaConfig",
    "MaskedTokens",
    "MultiBlockMasks",
    "PaddedMaskedTokens",
    "PatchDropoutOutput",
    "VJepaConfig",
    "VariableRatioMask",
    "apply_mask",
    "apply_masks",
    "block_masking",
    "box_masks",
    "example_keys",
    "inverse_block_masking",
    "mae_loss",
    "mask_schedule",
    "masked_ids",
    "multiblock_masking",
    "patch_dropout",
    "patchify",
    "random_masking",
    "random_masking_per_sample",
    "running_cell_masking",
    "sample_mask_ratios",
    "simmim_masking",
    "take_masked",
    "tube_masking",
    "unapply_masks",
    "unpatchify",
    "unshuffle",
    "variable_ratio_masking",
]
