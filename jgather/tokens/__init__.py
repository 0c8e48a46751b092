"""Token reduction inside the forward pass (``jgather.tokens``): merging, pruning, selection.

Masking removes tokens at random before the encoder; the functions here remove or merge tokens
by what the model says, inside it, with the same gathers and scatters:

* ToMe's token merging (Bolya et al., 2023): ``bipartite_soft_matching`` and its kth and
  random variants return a ``Merge`` (a pytree of indices) that ``merge``, ``unmerge``,
  ``merge_wavg`` and ``merge_source`` apply; ``proportional_attention_bias`` and
  ``r_schedule`` are ToMe's size term and per-layer schedule.
* Pruning: ``keep_topk`` (EViT's attentive tokens, with its fused token),
  ``batch_index_select`` (DynamicViT), ``complement_idx`` (EViT).
* ``score_masking``: the visible tokens of masked modeling chosen by a score (optionally
  Gumbel-perturbed), as ``random_masking``'s ``MaskedTokens``.

Counts that fix shapes (``r``, ``k``, ``mask_ratio``) are static Python values: a traced one
is a ``TypeError``. Every function is jit-compiled, works under ``jax.vmap``, and keeps a
batch-sharded input sharded without collectives. Random functions take an explicit key, first.

Layout: ``_merge`` (ToMe's ``Merge``, ``merge``, ``unmerge``), ``_matching`` (its
matchings), ``_sizes`` (``merge_wavg``, ``merge_source``, the size term), ``_schedule``
(``r_schedule``), ``_prune`` (EViT, DynamicViT), ``_select`` (score masking); the
package sits on ``masking`` (it returns ``MaskedTokens`` and reuses its keys and sorts).
"""

from jgather.tokens._matching import bipartite_soft_matching as bipartite_soft_matching
from jgather.tokens._matching import kth_bipartite_soft_matching as kth_bipartite_soft_matching
from jgather.tokens._matching import (
    random_bipartite_soft_matching as random_bipartite_soft_matching,
)
from jgather.tokens._merge import Merge as Merge
from jgather.tokens._merge import merge as merge
from jgather.tokens._merge import unmerge as unmerge
from jgather.tokens._prune import KeptTokens as KeptTokens
from jgather.tokens._prune import batch_index_select as batch_index_select
from jgather.tokens._prune import complement_idx as complement_idx
from jgather.tokens._prune import keep_topk as keep_topk
from jgather.tokens._schedule import r_schedule as r_schedule
from jgather.tokens._select import score_masking as score_masking
from jgather.tokens._sizes import merge_source as merge_source
from jgather.tokens._sizes import merge_wavg as merge_wavg
from jgather.tokens._sizes import proportional_attention_bias as proportional_attention_bias

__all__ = [
    "KeptTokens",
    "Merge",
    "batch_index_select",
    "bipartite_soft_matching",
    "complement_idx",
    "keep_topk",
    "kth_bipartite_soft_matching",
    "merge",
    "merge_source",
    "merge_wavg",
    "proportional_attention_bias",
    "r_schedule",
    "random_bipartite_soft_matching",
    "score_masking",
    "unmerge",
]
