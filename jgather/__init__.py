"""jgather: torch-exact gather/scatter and masked-modeling token masking for JAX.

The package is layered; imports only run downwards:

* ops (bottom):   ``_gather``, ``_scatter`` (shared checks in ``_indexing``)
* masking (on ops): ``_masking`` (MAE), ``_mask_strategies`` (the family),
  ``_per_sample_masking`` (per-sample ratios in fixed shapes),
  ``_patches`` (patchify/unpatchify), ``_loss`` (MAE loss); ``_keys`` (PRNG key checks)
* exploration (on both): ``_explain`` (explain/infer), ``demo/`` (``python -m jgather demo``)
"""

from jgather._explain import explain as explain
from jgather._explain import infer_gather as infer_gather
from jgather._gather import gather as gather
from jgather._gather import index_select as index_select
from jgather._gather import take_along_dim as take_along_dim
from jgather._keys import example_keys as example_keys
from jgather._loss import mae_loss as mae_loss
from jgather._mask_strategies import PatchDropoutOutput as PatchDropoutOutput
from jgather._mask_strategies import VariableRatioMask as VariableRatioMask
from jgather._mask_strategies import block_masking as block_masking
from jgather._mask_strategies import mask_schedule as mask_schedule
from jgather._mask_strategies import patch_dropout as patch_dropout
from jgather._mask_strategies import running_cell_masking as running_cell_masking
from jgather._mask_strategies import simmim_masking as simmim_masking
from jgather._mask_strategies import tube_masking as tube_masking
from jgather._mask_strategies import variable_ratio_masking as variable_ratio_masking
from jgather._masking import MaskedTokens as MaskedTokens
from jgather._masking import apply_mask as apply_mask
from jgather._masking import random_masking as random_masking
from jgather._masking import unshuffle as unshuffle
from jgather._patches import patchify as patchify
from jgather._patches import unpatchify as unpatchify
from jgather._per_sample_masking import PaddedMaskedTokens as PaddedMaskedTokens
from jgather._per_sample_masking import random_masking_per_sample as random_masking_per_sample
from jgather._per_sample_masking import sample_mask_ratios as sample_mask_ratios
from jgather._scatter import scatter as scatter
from jgather._scatter import scatter_add as scatter_add
from jgather._scatter import scatter_reduce as scatter_reduce

__version__ = "0.1.0"

__all__ = [
    "MaskedTokens",
    "PaddedMaskedTokens",
    "PatchDropoutOutput",
    "VariableRatioMask",
    "apply_mask",
    "block_masking",
    "example_keys",
    "explain",
    "gather",
    "index_select",
    "infer_gather",
    "mae_loss",
    "mask_schedule",
    "patch_dropout",
    "patchify",
    "random_masking",
    "random_masking_per_sample",
    "running_cell_masking",
    "sample_mask_ratios",
    "scatter",
    "scatter_add",
    "scatter_reduce",
    "simmim_masking",
    "take_along_dim",
    "tube_masking",
    "unpatchify",
    "unshuffle",
    "variable_ratio_masking",
]
