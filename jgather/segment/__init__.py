"""torch_scatter's API on JAX: segment reductions with argmax, softmax, std, logsumexp, CSR.

A port is an import change (``from torch_scatter import scatter_max`` ->
``from jgather.segment import scatter_max``): same names, positional order and defaults,
torch_scatter 2.1's semantics (index broadcasting, empty-segment values, the argmax sentinel
``src.shape[dim]``, integer means floor). Every function is pure and jit/vmap/grad-able; under
jit pass ``dim_size`` (static). ``out=`` is the initial array and is returned updated (JAX
arrays are immutable). Deliberate differences are listed in each docstring and the README.

This namespace is separate from the top-level torch-style ``jgather.scatter`` /
``jgather.scatter_add`` (``torch.Tensor.scatter*``: input, dim, index, src).
"""

from jgather.segment._composite import scatter_logsumexp as scatter_logsumexp
from jgather.segment._composite import scatter_std as scatter_std
from jgather.segment._coo import gather_coo as gather_coo
from jgather.segment._coo import segment_add_coo as segment_add_coo
from jgather.segment._coo import segment_coo as segment_coo
from jgather.segment._coo import segment_max_coo as segment_max_coo
from jgather.segment._coo import segment_mean_coo as segment_mean_coo
from jgather.segment._coo import segment_min_coo as segment_min_coo
from jgather.segment._coo import segment_sum_coo as segment_sum_coo
from jgather.segment._csr import gather_csr as gather_csr
from jgather.segment._csr import segment_add_csr as segment_add_csr
from jgather.segment._csr import segment_csr as segment_csr
from jgather.segment._csr import segment_max_csr as segment_max_csr
from jgather.segment._csr import segment_mean_csr as segment_mean_csr
from jgather.segment._csr import segment_min_csr as segment_min_csr
from jgather.segment._csr import segment_sum_csr as segment_sum_csr
from jgather.segment._scatter import scatter as scatter
from jgather.segment._scatter import scatter_add as scatter_add
from jgather.segment._scatter import scatter_max as scatter_max
from jgather.segment._scatter import scatter_mean as scatter_mean
from jgather.segment._scatter import scatter_min as scatter_min
from jgather.segment._scatter import scatter_mul as scatter_mul
from jgather.segment._scatter import scatter_sum as scatter_sum
from jgather.segment._softmax import scatter_log_softmax as scatter_log_softmax
from jgather.segment._softmax import scatter_softmax as scatter_softmax

__all__ = [
    "gather_coo",
    "gather_csr",
    "scatter",
    "scatter_add",
    "scatter_log_softmax",
    "scatter_logsumexp",
    "scatter_max",
    "scatter_mean",
    "scatter_min",
    "scatter_mul",
    "scatter_softmax",
    "scatter_std",
    "scatter_sum",
    "segment_add_coo",
    "segment_add_csr",
    "segment_coo",
    "segment_csr",
    "segment_max_coo",
    "segment_max_csr",
    "segment_mean_coo",
    "segment_mean_csr",
    "segment_min_coo",
    "segment_min_csr",
    "segment_sum_coo",
    "segment_sum_csr",
]
