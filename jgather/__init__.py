"""jgather: torch-exact gather/scatter and masked-modeling token masking for JAX.

The package is layered; imports only run downwards:

* ops (bottom): ``_gather``, ``_scatter``, ``_index``, ``_index_put``, ``_masked``,
  ``_view_scatter``, ``_embedding``, ``_indexing`` (index modes, lowering helpers) and
  ``_checks`` (the argument checks every public function shares)
* on ops: ``masking/`` (``jgather.masking``: MAE, its family, patches, loss, keys) and
  ``segment/`` (``jgather.segment``: torch_scatter's API)
* on masking: ``tokens/`` (``jgather.tokens``: token merging, pruning, score-guided masking)
* exploration (on top): ``_explain`` (explain/infer), ``demo/`` (``python -m jgather demo``)

Every public name of ``jgather.masking`` is also re-exported here, flat.
"""

from jgather import masking as masking
from jgather import segment as segment
from jgather import tokens as tokens
from jgather._embedding import embedding as embedding
from jgather._embedding import embedding_bag as embedding_bag
from jgather._explain import explain as explain
from jgather._explain import infer_gather as infer_gather
from jgather._gather import gather as gather
from jgather._gather import index_select as index_select
from jgather._gather import take_along_dim as take_along_dim
from jgather._index import index_add as index_add
from jgather._index import index_copy as index_copy
from jgather._index import index_fill as index_fill
from jgather._index import index_reduce as index_reduce
from jgather._index_put import index_put as index_put
from jgather._index_put import put as put
from jgather._index_put import take as take
from jgather._masked import masked_fill as masked_fill
from jgather._masked import masked_scatter as masked_scatter
from jgather._masked import masked_select as masked_select
from jgather._scatter import scatter as scatter
from jgather._scatter import scatter_add as scatter_add
from jgather._scatter import scatter_reduce as scatter_reduce
from jgather._view_scatter import diagonal_scatter as diagonal_scatter
from jgather._view_scatter import select_scatter as select_scatter
from jgather._view_scatter import slice_scatter as slice_scatter
from jgather.masking import IJepaConfig as IJepaConfig
from jgather.masking import MaskedTokens as MaskedTokens
from jgather.masking import MultiBlockMasks as MultiBlockMasks
from jgather.masking import PaddedMaskedTokens as PaddedMaskedTokens
from jgather.masking import PatchDropoutOutput as PatchDropoutOutput
from jgather.masking import VariableRatioMask as VariableRatioMask
from jgather.masking import VJepaConfig as VJepaConfig
from jgather.masking import apply_mask as apply_mask
from jgather.masking import apply_masks as apply_masks
from jgather.masking import block_masking as block_masking
from jgather.masking import box_masks as box_masks
from jgather.masking import example_keys as example_keys
from jgather.masking import inverse_block_masking as inverse_block_masking
from jgather.masking import mae_loss as mae_loss
from jgather.masking import mask_schedule as mask_schedule
from jgather.masking import masked_ids as masked_ids
from jgather.masking import multiblock_masking as multiblock_masking
from jgather.masking import patch_dropout as patch_dropout
from jgather.masking import patchify as patchify
from jgather.masking import random_masking as random_masking
from jgather.masking import random_masking_per_sample as random_masking_per_sample
from jgather.masking import running_cell_masking as running_cell_masking
from jgather.masking import sample_mask_ratios as sample_mask_ratios
from jgather.masking import simmim_masking as simmim_masking
from jgather.masking import take_masked as take_masked
from jgather.masking import tube_masking as tube_masking
from jgather.masking import unapply_masks as unapply_masks
from jgather.masking import unpatchify as unpatchify
from jgather.masking import unshuffle as unshuffle
from jgather.masking import variable_ratio_masking as variable_ratio_masking

__version__ = "0.1.0"

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
    "diagonal_scatter",
    "embedding",
    "embedding_bag",
    "example_keys",
    "explain",
    "gather",
    "index_add",
    "index_copy",
    "index_fill",
    "index_put",
    "index_reduce",
    "index_select",
    "infer_gather",
    "inverse_block_masking",
    "mae_loss",
    "mask_schedule",
    "masked_fill",
    "masked_ids",
    "masked_scatter",
    "masked_select",
    "multiblock_masking",
    "patch_dropout",
    "patchify",
    "put",
    "random_masking",
    "random_masking_per_sample",
    "running_cell_masking",
    "sample_mask_ratios",
    "scatter",
    "scatter_add",
    "scatter_reduce",
    "select_scatter",
    "simmim_masking",
    "slice_scatter",
    "take",
    "take_along_dim",
    "take_masked",
    "tube_masking",
    "unapply_masks",
    "unpatchify",
    "unshuffle",
    "variable_ratio_masking",
]
