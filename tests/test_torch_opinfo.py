"""jgather against torch's own OpInfo sample and error inputs (CPU). Skipped without torch.

torch describes each operator for its own test suite by an OpInfo in
``torch.testing._internal.common_methods_invocations.op_db``: ``sample_inputs`` are the inputs
torch tests the operator on, ``error_inputs`` the inputs it must reject. Every one of them for
``gather``, ``scatter``, ``scatter_add``, the ``scatter_reduce`` variants (sum, prod, mean,
amax, amin), ``take_along_dim`` and ``index_select`` runs here against the jgather function of
the same name, called with the sample's own arguments (jgather keeps torch's positional order
and keywords, so no adapter is needed):

``nn.functional.embedding`` and ``nn.functional.embedding_bag`` are jgather's ``embedding`` and
``embedding_bag``; their OpInfos take the weight first, so the call swaps the first two
arguments back (``_jgather``).

* values: the same dtype and shape, and the same values bit for bit (NaN where torch has NaN,
  the same sign on zeros), with x64 on so that int64, float64 and complex128 stay themselves;
* gradients: where the OpInfo says torch differentiates the op (``supports_autograd``), the
  float64 samples' vector-Jacobian products w.r.t. input and ``src`` with a fixed cotangent;
* errors: every error input raises in jgather too, of the type the porting guide's rule gives
  ("Errors are Python's": dtypes ``TypeError``, shapes ``ValueError``, out-of-range index
  values ``IndexError``), with a message that starts with the function's name.

Samples are drawn from a seeded torch generator (the global one is restored), so every run
sees the same inputs. The dtypes are those of ``_DTYPES``, chosen so that each path jgather
takes by dtype is met by every sample while the module stays within its time budget (compile
time per distinct signature dominates). Where the porting guide lists a deliberate difference
that a sample meets, the sample is filtered out explicitly (``_deliberate``) and the guide's
item named.
"""

import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jgather

torch = pytest.importorskip("torch")
pytest.importorskip("expecttest")  # torch.testing._internal imports it

with warnings.catch_warnings():  # torch's test helpers warn on import about optional tools
    warnings.simplefilter("ignore")
    from torch.testing._internal.common_methods_invocations import op_db

pytestmark = pytest.mark.usefixtures("x64_on")

_OPS = {
    "gather",
    "scatter",
    "scatter_add",
    "scatter_reduce",
    "take_along_dim",
    "index_select",
    "index_add",
    "index_copy",
    "index_fill",
    "index_put",
    "index_reduce",
    "take",
    "put",
    "masked_fill",
    "masked_scatter",
    "masked_select",
    "select_scatter",
    "slice_scatter",
    "diagonal_scatter",
    "nn.functional.embedding",
    "nn.functional.embedding_bag",
}
OPINFOS = {
    (op.name + "." + op.variant_test_name).rstrip("."): op for op in op_db if op.name in _OPS
}

# The dtypes the samples' values run in (eagerly), for each op: each path jgather takes by dtype,
# met once. float32; bfloat16 for half precision (sums and means accumulate in float32, as
# for float16); int64 (integer sums wrap, 'mean' floors, 'prod' overflows); bool (sum is
# 'or', prod 'and'); complex where torch has it. float64 runs in the gradient test, values
# included (under jax.jit). The gathers move data whatever its type (int64 is bool's and
# float32's path there). Other dtypes take one of these paths (float16 bfloat16's, the other
# integers int64's, complex128 complex64's); each dtype costs a compile per sample, and the
# module's budget (2 minutes on 2 cores) does not hold all of them.
_DTYPES = {
    "gather": ("float32", "bfloat16", "bool", "complex128"),
    "index_select": ("float32", "bfloat16", "bool", "complex128"),
    "take_along_dim": ("float32", "bfloat16", "bool", "complex128"),
    "scatter": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "scatter_add": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "scatter_reduce": ("float32", "bfloat16", "int64"),
    "index_add": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "index_copy": ("float32", "bfloat16", "bool", "complex64"),
    "index_fill": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "index_put": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "index_reduce": ("float32", "bfloat16", "int64"),
    "take": ("float32", "bfloat16", "bool", "complex128"),
    "put": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "masked_fill": ("float32", "bfloat16", "int64", "bool", "complex64"),
    "masked_scatter": ("float32", "bfloat16", "bool", "complex64"),
    "masked_select": ("float32", "bfloat16", "bool", "complex64"),
    "select_scatter": ("float32", "bfloat16", "bool"),
    "slice_scatter": ("float32", "bfloat16", "bool"),
    "diagonal_scatter": ("float32", "bfloat16", "bool", "complex64"),
    # torch has them for floats only; bfloat16 sums round as torch's CPU kernel does.
    "nn.functional.embedding": ("float32", "bfloat16"),
    "nn.functional.embedding_bag": ("float32", "bfloat16", "float16"),
}


def _torch_dtype(name):
    return getattr(torch, name)


# The OpInfo's own generator functions, called directly: ``op.sample_inputs`` wraps them in an
# iterator that inspects the call stack for torch's test decorators on every sample, which
# costs seconds per op here and adds nothing outside torch's test classes.
def _samples(op, dtype, requires_grad):
    """The OpInfo's samples, drawn from a fixed seed; torch's global generator is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return list(op.sample_inputs_func(op, "cpu", dtype, requires_grad))


def _errors(op):
    if op.error_inputs_func is None:
        return []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return list(op.error_inputs_func(op, "cpu"))


def _np(value):
    """A torch tensor as a NumPy array (bfloat16 through ml_dtypes); anything else as it is."""
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach()
    if value.dtype == torch.bfloat16:
        return value.float().numpy().astype(ml_dtypes.bfloat16)
    return value.numpy().copy()


def _jax(value):
    value = _np(value)
    return jnp.asarray(value) if isinstance(value, np.ndarray) else value


def _describe(sample):
    """One line naming a sample's arguments, for failure messages."""

    def one(v):
        if isinstance(v, torch.Tensor):
            return f"{str(v.dtype).removeprefix('torch.')}{list(v.shape)}"
        return repr(v)

    args = ", ".join(one(a) for a in (sample.input, *sample.args))
    kwargs = "".join(f", {k}={one(v)}" for k, v in sample.kwargs.items())
    return f"({args}{kwargs})"


# --------------------------------------------------------------------------------------------
# Deliberate differences.


def _deliberate(op, sample):
    """The porting guide's item when the sample meets a deliberate difference, else None."""
    max_norm = sample.kwargs.get("max_norm")
    if op.name.startswith("nn.functional.embedding") and max_norm and sample.input.itemsize > 2:
        # (bfloat16 and float16 norms, summed in float32 and rounded, come out as torch's.)
        return "embedding: max_norm's norm may differ from torch's in the last bit"
    psw = sample.kwargs.get("per_sample_weights")
    if psw is not None and psw.dtype == torch.float32:
        return "embedding_bag: float32 per_sample_weights products are rounded before the sum"
    if op.name == "scatter" and isinstance(sample.args[2], torch.Tensor):
        # "Duplicate indices: torch's winner is unspecified": compare only unique targets.
        dim, index = sample.args[0], sample.args[1]
        if index.numel() and index.dim():
            flat = index.movedim(dim, -1).reshape(-1, index.shape[dim])
            if any(len(set(row.tolist())) < len(row) for row in flat):
                return "scatter: duplicate indices (torch's winner is unspecified)"
    if sample.input.dtype in (torch.bfloat16, torch.float16) and _summands(op, sample) >= 3:
        # torch's CPU kernels of these ops add in the input's dtype, rounding after every
        # addition; jgather adds in float32 and rounds once (two summands round alike).
        return "index family: bf16/fp16 sums and means accumulate in float32"
    return None


def _summands(op, sample):
    """The most values summed into one output position by a summing index-family sample
    (the input's own value included), counted by torch's own op on int64 ones; else 0."""
    x, args, kwargs = sample.input, sample.args, sample.kwargs
    zeros = torch.zeros(x.shape, dtype=torch.int64)
    if op.name == "index_add" or (op.name == "index_reduce" and args[3] == "mean"):
        dim, index, source = args[0], args[1], args[2]
        counts = torch.index_add(zeros, dim, index, torch.ones(source.shape, dtype=torch.int64))
        self_ = op.name == "index_add" or kwargs.get("include_self", True)
    elif op.name == "index_put" and kwargs.get("accumulate", False):
        ones = torch.ones(args[1].shape, dtype=torch.int64)
        counts, self_ = torch.index_put(zeros, args[0], ones, accumulate=True), True
    elif op.name == "put" and (args[2] if len(args) > 2 else kwargs.get("accumulate", False)):
        ones = torch.ones(args[1].shape, dtype=torch.int64)
        counts, self_ = torch.put(zeros, args[0], ones, accumulate=True), True
    else:
        return 0
    return int(counts.max()) + int(self_) if counts.numel() else 0


def _params(grad):
    params = []
    for key, op in OPINFOS.items():
        if grad and not op.supports_autograd:
            continue
        supported = {str(d).removeprefix("torch.") for d in op.supported_dtypes("cpu")}
        names = ("float64",) if grad else _DTYPES[op.name]
        for name in names:
            if name not in supported:
                continue
            for i, sample in enumerate(_samples(op, _torch_dtype(name), grad)):
                reason = _deliberate(op, sample)
                if reason is not None:
                    continue  # filtered out explicitly: see _deliberate
                params.append(pytest.param(op, sample, id=f"{key}-{name}-{i}"))
    return params


# --------------------------------------------------------------------------------------------
# Comparisons.


def _assert_same(got, want, what):
    """Same dtype, shape and values bit for bit: NaN where NaN, the same sign on zeros."""
    got, want = np.asarray(got), _np(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, torch {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch {want.shape}"
    if want.dtype.kind == "c":
        parts = [(got.real, want.real), (got.imag, want.imag)]
    else:
        parts = [(got, want)]
    for g, w in parts:
        if w.dtype.kind == "f" or w.dtype == ml_dtypes.bfloat16:
            g, w = g.astype(np.float64), w.astype(np.float64)
            np.testing.assert_array_equal(g, w, err_msg=what)  # NaN == NaN here
            np.testing.assert_array_equal(np.signbit(g), np.signbit(w), err_msg=what + " (sign)")
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)


def _name(op):
    """jgather's name of the op (``nn.functional.embedding`` is ``jgather.embedding``)."""
    return op.name.removeprefix("nn.functional.")


def _jgather(op):
    fn = getattr(jgather, _name(op))
    if op.name.startswith("nn.functional.embedding"):
        # The OpInfos call ``op(weight, input, **kwargs)``; jgather keeps torch's order.
        return lambda weight, input, *args, **kwargs: fn(input, weight, *args, **kwargs)
    return fn


def _kwargs(sample):
    """The sample's keyword arguments, its tensors (offsets, per_sample_weights) as arrays."""
    return {k: _jax(v) for k, v in sample.kwargs.items()}


def _torch_call(op, sample):
    with warnings.catch_warnings():  # scatter's reduce= with a tensor src is deprecated
        warnings.simplefilter("ignore")
        return op(sample.input, *sample.args, **sample.kwargs)


@pytest.mark.parametrize(("op", "sample"), _params(grad=False))
def test_sample_inputs_match_torch(op, sample):
    # jgather first: torch's embedding with max_norm renormalises the weight in place.
    got = _jgather(op)(_jax(sample.input), *map(_jax, sample.args), **_kwargs(sample))
    want = _torch_call(op, sample)
    _assert_same(got, want, f"{op.name}{_describe(sample)}")


_VJPS = {}  # one jitted program per signature: samples that differ only in values share it


def _jit_kwargs(op, want):
    """The keywords jgather's documented jit form adds: ``masked_select`` under ``jax.jit``
    takes the result's length as ``size=`` (its mask is traced there)."""
    return {"size": want.numel()} if op.name == "masked_select" else {}


def _vjp(op, sample, slots, kwargs):
    """jax.jit of (primals, cotangent) -> (output, vjp) for the sample's op and static args.

    ``slots`` name the differentiated arguments after the input: positions in ``args``, or
    keyword names (a tensor keyword such as ``per_sample_weights``); ``others`` holds the
    other tensor arguments (positions as strings, or keyword names)."""
    statics = tuple(
        None if i in slots or isinstance(a, torch.Tensor) else a for i, a in enumerate(sample.args)
    )
    static_kwargs = {k: v for k, v in kwargs.items() if not isinstance(v, torch.Tensor)}
    key = (op.name, statics, tuple(sorted(static_kwargs.items())), tuple(map(str, slots)))
    if key not in _VJPS:

        def fn(primals, others, cot):
            def call(x, *tensors):
                args, kwargs = list(statics), dict(static_kwargs)
                for i, t in [*zip(slots, tensors, strict=True), *others.items()]:
                    if isinstance(i, int) or i.isdigit():
                        args[int(i)] = t
                    else:
                        kwargs[i] = t
                return _jgather(op)(x, *args, **kwargs)

            out, vjp = jax.vjp(call, *primals)
            return out, vjp(cot)

        _VJPS[key] = jax.jit(fn)
    return _VJPS[key]


@pytest.mark.parametrize(("op", "sample"), _params(grad=True))
def test_float64_values_and_gradients_match_torch(op, sample):
    """Values and the vjp w.r.t. the input and every float tensor argument (src) under jax.jit,
    with one fixed cotangent."""
    tensors = {
        **{i: a for i, a in enumerate(sample.args) if isinstance(a, torch.Tensor)},
        **{k: v for k, v in sample.kwargs.items() if isinstance(v, torch.Tensor)},
    }
    slots = [i for i, a in tensors.items() if a.requires_grad]
    others = {str(i): _jax(a) for i, a in tensors.items() if i not in slots}  # a pytree
    diff = [sample.input, *(tensors[i] for i in slots)]
    want_out = _torch_call(op, sample)
    cot = np.random.default_rng(0).normal(size=tuple(want_out.shape))
    want = torch.autograd.grad(want_out, diff, torch.from_numpy(cot), allow_unused=True)
    kwargs = {**sample.kwargs, **_jit_kwargs(op, want_out)}
    out, got = _vjp(op, sample, slots, kwargs)([_jax(t) for t in diff], others, jnp.asarray(cot))
    what = f"{op.name}{_describe(sample)}"
    _assert_same(out, want_out, what)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        w = np.zeros(diff[k].shape) if w is None else _np(w)
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12, atol=1e-12, err_msg=what)


# --------------------------------------------------------------------------------------------
# Error inputs.

# torch's error (its regex, as the OpInfo states it) -> the exception jgather raises, by the
# porting guide's rule "Errors are Python's" (the key is a part of torch's regex). An error
# input that no key matches fails the test, so a new one in torch is looked at, not passed.
_ERROR_TYPES = {
    "Size does not match at dimension": ValueError,
    "Index tensor must have the same number of dimensions": ValueError,
    "is out of bounds for dimension": IndexError,
    "Expected self.dtype to be equal to src.dtype": TypeError,
    "source tensor shape must match self tensor shape": ValueError,
    "only supports boolean masks": TypeError,
    "only supports a 0-dimensional value tensor": ValueError,
    "value cannot be converted to type .* without overflow": ValueError,
    "'weight' must be 2-D": ValueError,
}


def _error_params():
    params = []
    for key, op in OPINFOS.items():
        for i, error in enumerate(_errors(op)):
            params.append(pytest.param(op, error, id=f"{key}-{i}"))
    return params


@pytest.mark.parametrize(("op", "error"), _error_params())
def test_error_inputs_raise_the_documented_type(op, error):
    sample = error.sample_input
    with pytest.raises(error.error_type, match=error.error_regex):  # torch rejects it
        _torch_call(op, sample)
    kwargs = _kwargs(sample)
    args = (_jax(sample.input), *map(_jax, sample.args))
    if "out" in kwargs:
        # "No in-place variants": jgather has no out= at all (torch's errors here are about out's
        # dtype or its overlap with the input); passing one is Python's TypeError.
        with pytest.raises(TypeError, match="out"):
            _jgather(op)(*args, **kwargs)
        return
    expected = next((t for k, t in _ERROR_TYPES.items() if k in error.error_regex), None)
    assert expected is not None, f"no documented type for torch's {error.error_regex!r}"
    with pytest.raises(expected) as info:
        _jgather(op)(*args, **kwargs)
    assert type(info.value) is expected, info.value
    assert str(info.value).startswith(f"{_name(op)}: "), str(info.value)
