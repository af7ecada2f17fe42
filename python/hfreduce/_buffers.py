"""Turning numpy arrays and CPU torch tensors into (pointer, count, hfrDataType_t), with every
check done in Python before the library is called."""

import sys

from ._errors import InvalidArgumentError

# hfrDataType_t
INT8, UINT8, INT32, UINT32, INT64, UINT64, FLOAT16, FLOAT32, FLOAT64, BFLOAT16 = range(10)

DTYPE_NAMES = {
    INT8: "int8", UINT8: "uint8", INT32: "int32", UINT32: "uint32", INT64: "int64",
    UINT64: "uint64", FLOAT16: "float16", FLOAT32: "float32", FLOAT64: "float64",
    BFLOAT16: "bfloat16",
}

# hfrRedOp_t
OPS = {"sum": 0, "prod": 1, "max": 2, "min": 3, "avg": 4}
OP_NAMES = {v: k for k, v in OPS.items()}

ITEMSIZE = {
    INT8: 1, UINT8: 1, INT32: 4, UINT32: 4, INT64: 8, UINT64: 8, FLOAT16: 2, FLOAT32: 4,
    FLOAT64: 8, BFLOAT16: 2,
}

_NUMPY_KINDS = {
    ("i", 1): INT8, ("u", 1): UINT8, ("i", 4): INT32, ("u", 4): UINT32,
    ("i", 8): INT64, ("u", 8): UINT64, ("f", 2): FLOAT16, ("f", 4): FLOAT32,
    ("f", 8): FLOAT64,
}

_TORCH_NAMES = {
    "torch.int8": INT8, "torch.uint8": UINT8, "torch.int32": INT32, "torch.int64": INT64,
    "torch.float16": FLOAT16, "torch.float32": FLOAT32, "torch.float64": FLOAT64,
    "torch.bfloat16": BFLOAT16,
    # Newer torch releases have these; 1.13 does not.
    "torch.uint32": UINT32, "torch.uint64": UINT64,
}


def op_code(op):
    """'sum' | 'prod' | 'max' | 'min' | 'avg' (any case), or the hfrRedOp_t integer."""
    if isinstance(op, bool):
        raise InvalidArgumentError("op=%r is not a reduction operation; use one of %s"
                                   % (op, ", ".join(OPS)))
    if isinstance(op, int):
        if op in OP_NAMES:
            return op
        raise InvalidArgumentError("op=%d is not an hfrRedOp_t (0..4: %s)" % (op, ", ".join(OPS)))
    if isinstance(op, str) and op.lower() in OPS:
        return OPS[op.lower()]
    raise InvalidArgumentError("op=%r is not a reduction operation; use one of %s"
                               % (op, ", ".join(OPS)))


def _is_torch_tensor(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_numpy_array(x):
    np = sys.modules.get("numpy")
    return np is not None and isinstance(x, np.ndarray)


def describe(x, name="x", write=True, c_order=False):
    """(address, element count, hfrDataType_t) of x.

    write: the library writes x (else a read-only numpy array, or a torch leaf that requires
    grad, is accepted). c_order: x's elements are taken as blocks in row-major order, so a numpy
    array that is only Fortran-contiguous is refused.

    Raises InvalidArgumentError naming the problem: not a numpy array or torch tensor, a
    non-contiguous, read-only, non-CPU or wrong-dtype buffer.
    """
    if _is_torch_tensor(x):
        return _describe_torch(x, name, write)
    if _is_numpy_array(x):
        return _describe_numpy(x, name, write, c_order)
    raise InvalidArgumentError(
        "%s is a %s.%s; HFReduce takes a numpy.ndarray or a CPU torch.Tensor"
        % (name, type(x).__module__, type(x).__qualname__))


def is_buffer(x):
    return _is_torch_tensor(x) or _is_numpy_array(x)


def empty_like(x, shape):
    """A new, C-contiguous buffer of x's kind (numpy or CPU torch) and dtype."""
    if _is_torch_tensor(x):
        return sys.modules["torch"].empty(tuple(shape), dtype=x.dtype)
    return sys.modules["numpy"].empty(tuple(shape), dtype=x.dtype)


def _describe_numpy(x, name, write=True, c_order=False):
    dt = x.dtype
    code = _NUMPY_KINDS.get((dt.kind, dt.itemsize))
    if code is None or dt.fields is not None or dt.subdtype is not None:
        raise InvalidArgumentError(
            "%s has dtype %s, which HFReduce does not reduce; supported numpy dtypes: "
            "int8, uint8, int32, uint32, int64, uint64, float16, float32, float64"
            % (name, dt))
    if not dt.isnative:
        raise InvalidArgumentError(
            "%s has non-native byte order (dtype %s); use x.astype(x.dtype.newbyteorder('='))"
            % (name, dt.str))
    if not (x.flags.c_contiguous or x.flags.f_contiguous):
        raise InvalidArgumentError(
            "%s is not contiguous (shape %s, strides %s); use numpy.ascontiguousarray(%s) "
            "and copy the result back" % (name, x.shape, x.strides, name))
    if c_order and not x.flags.c_contiguous:
        raise InvalidArgumentError(
            "%s is Fortran-ordered (shape %s); this collective splits it into blocks in C "
            "order: use numpy.ascontiguousarray(%s)" % (name, x.shape, name))
    if write and not x.flags.writeable:
        raise InvalidArgumentError(
            "%s is read-only (flags.writeable is False); the collective writes it and needs a "
            "writable array" % name)
    if not x.flags.aligned:
        raise InvalidArgumentError("%s is not aligned to its dtype (%s)" % (name, dt))
    return x.ctypes.data, int(x.size), code


def _describe_torch(x, name, write=True):
    code = _TORCH_NAMES.get(str(x.dtype))
    if code is None:
        raise InvalidArgumentError(
            "%s has dtype %s, which HFReduce does not reduce; supported torch dtypes: int8, "
            "uint8, int32, int64, float16, bfloat16, float32, float64" % (name, x.dtype))
    if x.device.type != "cpu":
        raise InvalidArgumentError(
            "%s is on device %s; HFReduce reduces CPU tensors only (use x.cpu() and copy back)"
            % (name, x.device))
    if x.layout != sys.modules["torch"].strided:
        raise InvalidArgumentError("%s has layout %s; only dense (strided) tensors are supported"
                                   % (name, x.layout))
    if not x.is_contiguous():
        raise InvalidArgumentError(
            "%s is not contiguous (shape %s, stride %s); use %s.contiguous() and copy the "
            "result back" % (name, tuple(x.shape), x.stride(), name))
    if write and x.requires_grad:
        # The library writes behind autograd's back: into a leaf, what torch forbids for
        # in-place ops too; into a tensor autograd saved for backward, without the version
        # bump that would tell it, so backward would silently use the new values.
        raise InvalidArgumentError(
            "%s requires grad (%s); HFReduce writes into it behind autograd's back: pass "
            "%s.detach() (it shares the memory) instead"
            % (name, "a leaf" if x.is_leaf else "not a leaf", name))
    return x.data_ptr(), int(x.numel()), code
