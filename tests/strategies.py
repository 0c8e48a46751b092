"""The hypothesis strategies every test module draws its random cases from.

One module, so that the tests of an op family share one notion of a valid case (shapes, dims,
index values, dtypes) and a change to it shows up in every test that uses it. The plain helpers
(``draw_values``, ``draw_indices``, ``draw_gather_shapes``) take the ``draw`` a ``st.composite``
strategy receives; the strategies build on them. Which test module uses which:

* torch's gather family (test_gather): ``gather_cases``, ``batched_gather_cases``,
  ``take_along_dim_cases``, ``index_select_cases``;
* torch's scatter family (test_scatter): ``scatter_cases``, ``batched_scatter_cases``;
* every dtype of scatter_reduce (test_ops_dtypes): ``exact_values``;
* jgather.segment (test_segment): ``segment_scatter_cases``, ``segment_sorted_cases``;
* infer_gather (test_explain): ``infer_gather_cases``.
"""

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st
from reference import DTYPES, SEGMENT_DTYPES, np_dtype

# --------------------------------------------------------------------------------------------
# Building blocks (take a composite strategy's ``draw``).


def draw_values(draw, shape, dtype_name: str, *, lo: int = -8, hi: int = 8) -> np.ndarray:
    """Hypothesis: small integer-valued entries in [lo, hi] (exact in every dtype), or bools.

    ``draw`` is the one a ``st.composite`` strategy receives. uint8 draws from [max(lo, 0), hi].
    """
    n = int(np.prod(shape, dtype=np.int64))
    if dtype_name == "bool":
        flat = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        lo = max(lo, 0) if dtype_name == "uint8" else lo
        flat = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
    return np.array(flat, dtype=np_dtype(dtype_name)).reshape(shape)


def draw_indices(draw, shape, size: int) -> np.ndarray:
    """Hypothesis: int32 index values in [0, size); small sizes make duplicates common."""
    n = int(np.prod(shape, dtype=np.int64))
    if n and size == 0:
        raise ValueError("a non-empty index into an empty dim has no valid values")
    flat = draw(st.lists(st.integers(0, max(size - 1, 0)), min_size=n, max_size=n))
    return np.array(flat, dtype=np.int32).reshape(shape)


def draw_gather_shapes(draw, max_rank=4, max_size=6):
    """Draws ``(shape, dim, index_shape, size)`` for a gather/scatter case (hypothesis ``draw``).

    ``index_shape`` has the input's rank and is no larger than ``shape`` off ``dim`` (any size on
    ``dim``); ``size`` is the extent of ``dim`` that index values must respect. 0-d and 1-D
    shapes are paired freely, as torch does.
    """
    rank = draw(st.integers(0, max_rank))
    shape = tuple(draw(st.lists(st.integers(0, max_size), min_size=rank, max_size=rank)))
    n = max(rank, 1)
    dim = draw(st.integers(-n, n - 1))
    d = dim % n
    size = shape[d] if rank else 1
    ishape = [
        draw(st.integers(0, max_size)) if i == d else draw(st.integers(0, s))
        for i, s in enumerate(shape)
    ]
    if size == 0 and rank:
        ishape[d] = 0
    if rank <= 1 and size and draw(st.booleans()):
        # torch pairs 0-d with 1-D freely (a 0-d tensor acts as shape [1]).
        ishape = [draw(st.integers(0, max_size))] if rank == 0 else []
    return shape, dim, tuple(ishape), size


# --------------------------------------------------------------------------------------------
# torch's gather family.


@st.composite
def gather_cases(draw, max_rank=4, max_size=6):
    """(x, dim, index): index.ndim == x.ndim, index no larger than x off dim, any size on dim."""
    shape, dim, ishape, size = draw_gather_shapes(draw, max_rank, max_size)
    dtype = draw(st.sampled_from(DTYPES))
    x = draw_values(draw, shape, dtype)
    index = draw_indices(draw, tuple(ishape), size)
    return x, dim, index


@st.composite
def batched_gather_cases(draw):
    """Two independent cases with the same shapes, stacked on a new leading axis."""
    x, dim, index = draw(gather_cases(max_rank=3, max_size=4))
    d = dim % max(x.ndim, 1)
    size = x.shape[d] if x.ndim else 1
    x2 = draw_values(draw, x.shape, x.dtype.name)
    index2 = draw_indices(draw, index.shape, size)
    return np.stack([x, x2]), dim, np.stack([index, index2])


@st.composite
def take_along_dim_cases(draw):
    """(x, indices, dim): same rank; off dim each pair of sizes equal or one of them 1."""
    rank = draw(st.integers(0, 4))
    # torch: a 0-d input takes only dim=None ("Dimension specified as 0 but tensor has no
    # dimensions"); the error tests check that case.
    dim = draw(st.none() | st.integers(-rank, rank - 1)) if rank else None
    dtype = draw(st.sampled_from(DTYPES))
    if dim is None:
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank)))
        size = int(np.prod(shape, dtype=np.int64))
        irank = draw(st.integers(0, 3))
        ishape = tuple(draw(st.lists(st.integers(0, 4), min_size=irank, max_size=irank)))
        if size == 0:
            ishape = (0, *ishape)
        return draw_values(draw, shape, dtype), draw_indices(draw, ishape, size), None
    d = dim % max(rank, 1)
    shape, ishape = [], []
    for i in range(rank):
        if i == d:
            shape.append(draw(st.integers(0, 4)))
            ishape.append(draw(st.integers(0, 4)))
            continue
        size = draw(st.integers(0, 4))
        kind = draw(st.sampled_from(["same", "x1", "i1"]))
        shape.append(1 if kind == "x1" else size)
        ishape.append(1 if kind == "i1" else size)
    if rank and shape[d] == 0:
        ishape[d] = 0
    size = shape[d] if rank else 1
    return draw_values(draw, tuple(shape), dtype), draw_indices(draw, tuple(ishape), size), dim


@st.composite
def index_select_cases(draw):
    rank = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=rank, max_size=rank)))
    n = max(rank, 1)
    dim = draw(st.integers(-n, n - 1))
    size = shape[dim % n] if rank else 1
    if rank == 0:
        ishape = draw(st.sampled_from([(), (1,)]))
    else:
        ishape = draw(st.sampled_from([(), (draw(st.integers(0, 6)) if size else 0,)]))
        if size == 0:
            ishape = (0,)
    dtype = draw(st.sampled_from(DTYPES))
    return draw_values(draw, shape, dtype), dim, draw_indices(draw, ishape, size)


# --------------------------------------------------------------------------------------------
# torch's scatter family.


@st.composite
def scatter_cases(draw, max_rank=4, max_size=6, dtypes=DTYPES, lo=-8, hi=8):
    """(x, dim, index, src): index no larger than x off dim, src no smaller than index."""
    shape, dim, ishape, size = draw_gather_shapes(draw, max_rank, max_size)
    sshape = tuple(min(s + draw(st.integers(0, 2)), max(s, max_size)) for s in ishape)
    if len(ishape) <= 1 and draw(st.booleans()):  # src too may be 0-d or 1-D
        n_index = ishape[0] if ishape else 1
        sshape = (
            () if n_index <= 1 and draw(st.booleans()) else (n_index + draw(st.integers(0, 1)),)
        )
    dtype = draw(st.sampled_from(dtypes))
    x = draw_values(draw, shape, dtype, lo=lo, hi=hi)
    index = draw_indices(draw, tuple(ishape), size)
    src = draw_values(draw, sshape, dtype, lo=lo, hi=hi)
    return x, dim, index, src


@st.composite
def batched_scatter_cases(draw):
    """Two independent cases with the same shapes, stacked on a new leading axis."""
    x, dim, index, src = draw(scatter_cases(max_rank=3, max_size=4, lo=-3, hi=3))
    d = dim % max(x.ndim, 1)
    size = x.shape[d] if x.ndim else 1
    x2 = draw_values(draw, x.shape, x.dtype.name, lo=-3, hi=3)
    index2 = draw_indices(draw, index.shape, size)
    src2 = draw_values(draw, src.shape, x.dtype.name, lo=-3, hi=3)
    return np.stack([x, x2]), dim, np.stack([index, index2]), np.stack([src, src2])


# --------------------------------------------------------------------------------------------
# scatter_reduce over every dtype: values whose sums and products are exact.


def exact_values(name, reduce):
    """Small values whose sums/products are exact in float32 and in range of every dtype."""
    if name == "bool":
        return st.booleans()
    if name.startswith("uint"):
        return st.integers(0, 3)
    if name.startswith("int"):
        return st.integers(-3, 3)
    if reduce == "prod":
        return st.sampled_from([-1.0, 1.0, -0.5, 0.5])
    return st.sampled_from([-3.0, -1.5, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0])


# --------------------------------------------------------------------------------------------
# jgather.segment (torch_scatter).


@st.composite
def segment_scatter_cases(draw, dtypes=SEGMENT_DTYPES, allow_out=True, min_e=0):
    rank = draw(st.integers(1, 4))
    shape = list(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    dim = draw(st.integers(-rank, rank - 1))
    d = dim % rank
    shape[d] = draw(st.integers(min_e, 5))
    shape = tuple(shape)
    form = draw(st.sampled_from(["1d", "lead", "full"]))
    if form == "1d":
        ishape = (shape[d],)
        if d != rank - 1 and rank > 1 and draw(st.booleans()):
            form = "lead"
    if form == "lead":
        m = draw(st.integers(d + 1, rank))
        ishape = tuple(s if (i == d or draw(st.booleans())) else 1 for i, s in enumerate(shape[:m]))
    elif form == "full":
        ishape = shape
    hi = draw(st.integers(0, 4))
    n = int(np.prod(ishape))
    index = np.array(draw(st.lists(st.integers(0, hi), min_size=n, max_size=n)), np.int32).reshape(
        ishape
    )
    needed = int(index.max()) + 1 if index.size else 0
    dim_size = needed + draw(st.integers(0, 2))
    dtype = draw(st.sampled_from(dtypes))
    lo = 0 if dtype == "uint8" else -4
    src = (
        np.array(
            draw(
                st.lists(
                    st.integers(lo, 4), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
                )
            ),
        )
        .astype(np_dtype(dtype))
        .reshape(shape)
    )
    out = None
    if allow_out and draw(st.booleans()):
        oshape = list(shape)
        oshape[d] = dim_size
        k = int(np.prod(oshape))
        out = (
            np.array(draw(st.lists(st.integers(-3, 3), min_size=k, max_size=k)))
            .astype(np_dtype(dtype))
            .reshape(oshape)
        )
    return src, index, dim, dim_size, out


@st.composite
def segment_sorted_cases(draw):
    src = draw(segment_scatter_cases(dtypes=("float32", "int32", "bfloat16")))[0]
    # segment_* reduce along index.ndim - 1 and need the index sorted along it.
    rank = src.ndim
    m = draw(st.integers(1, rank))
    ishape = tuple(
        s if draw(st.booleans()) or i == m - 1 else 1 for i, s in enumerate(src.shape[:m])
    )
    n = int(np.prod(ishape))
    index = np.sort(
        np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), np.int32).reshape(
            ishape
        ),
        axis=-1,
    )
    return src, index, draw(st.sampled_from(["sum", "mean", "min", "max"]))


# --------------------------------------------------------------------------------------------
# infer_gather.


@st.composite
def infer_gather_cases(draw):
    ndim = draw(st.integers(1, 4))
    in_shape = draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=1, max_side=4))
    dim = draw(st.integers(0, ndim - 1))
    idx_shape = tuple(
        draw(st.integers(1, 5)) if ax == dim else draw(st.integers(1, n))
        for ax, n in enumerate(in_shape)
    )
    # Few distinct values, so repeats (first-match rule) and several valid dims both occur.
    x = draw(hnp.arrays(np.int8, in_shape, elements=st.integers(0, 3)))
    index = draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(0, in_shape[dim] - 1)))
    return x, dim, index
