"""hfreduce: Python binding (ctypes) of HFReduce, CPU allreduce over TCP.

    import hfreduce
    with hfreduce.init() as comm:               # from hfrun / torchrun environment
        comm.all_reduce(x, op="sum")            # in place on a numpy array or CPU torch tensor
        h = comm.all_reduce_async(y, op="avg")  # returns at once
        ...
        h.wait()

libhfreduce.so is looked up, on first use, in: $HFREDUCE_LIBRARY; next to this file;
<sys.prefix>/lib; $HFREDUCE_PREFIX/lib; ctypes.util.find_library("hfreduce").
"""

import ctypes
import threading

from . import _errors, _lib
from ._buffers import DTYPE_NAMES, OP_NAMES, OPS, describe, op_code
from ._errors import (AbortedError, Error, HFRSystemError, HFRTimeoutError, InternalError,
                      InvalidArgumentError, InvalidUsageError, LibraryNotFoundError,
                      RemoteError)

__all__ = [
    "init", "get_unique_id", "version", "library_path", "Communicator", "Request",
    "Error", "LibraryNotFoundError", "HFRSystemError", "InternalError", "InvalidArgumentError",
    "InvalidUsageError", "RemoteError", "HFRTimeoutError", "AbortedError",
    "UNIQUE_ID_BYTES", "OPS",
]

__version__ = "0.1.0"
UNIQUE_ID_BYTES = _lib.UNIQUE_ID_BYTES

_load_lock = threading.Lock()
_loaded = None  # (CDLL, path)


def _library():
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                _loaded = _lib.load()
    return _loaded[0]


def library_path():
    """The path of the libhfreduce.so in use (loading it if needed)."""
    _library()
    return _loaded[1]


def _decode(b):
    return b.decode("utf-8", "replace") if b else ""


def _raise(code, handle=None, what=None):
    """Raises the exception of result `code`, with the library's last-error sentence of the
    communicator `handle` (or the calling thread's when handle is None or has none)."""
    lib = _library()
    msg = ""
    if handle is not None:
        msg = _decode(lib.hfrGetLastError(handle))
    if not msg:
        msg = _decode(lib.hfrGetLastError(None))
    if what and not msg:
        msg = "%s failed" % what
    desc = _decode(lib.hfrGetErrorString(code))
    raise _errors.error_class(code)(msg, code=code, description=desc)


def _check(code, handle=None, what=None):
    if code != _errors.SUCCESS:
        _raise(code, handle, what)


def version():
    """The library's version code, major * 1000 + minor * 100 + patch (e.g. 100 for 0.1.0)."""
    v = ctypes.c_int()
    _check(_library().hfrGetVersion(ctypes.byref(v)), what="hfrGetVersion")
    return v.value


def get_unique_id():
    """A new unique id (128 bytes) for init(rank=, size=, unique_id=). Call it on the process
    that will be rank 0 and pass the bytes to the other ranks out of band."""
    uid = _lib.UniqueId()
    _check(_library().hfrGetUniqueId(ctypes.byref(uid)), what="hfrGetUniqueId")
    return ctypes.string_at(ctypes.addressof(uid), UNIQUE_ID_BYTES)


def init(rank=None, size=None, unique_id=None):
    """Creates a Communicator.

    init(): from the launcher's environment (hfrun, torchrun, mpirun, srun) via
    hfrCommInitFromEnv. init(rank=r, size=n, unique_id=b): via hfrCommInitRank, with the bytes
    of get_unique_id() from rank 0. Blocks until every rank has joined (or HFR_TIMEOUT).
    """
    lib = _library()
    handle = _lib.hfrComm_t()
    given = [a is not None for a in (rank, size, unique_id)]
    if not any(given):
        _check(lib.hfrCommInitFromEnv(ctypes.byref(handle)), what="hfrCommInitFromEnv")
    elif all(given):
        if isinstance(unique_id, str):
            raise InvalidArgumentError("unique_id must be bytes (from get_unique_id()), not str")
        uid_bytes = bytes(unique_id)
        if len(uid_bytes) != UNIQUE_ID_BYTES:
            raise InvalidArgumentError("unique_id has %d bytes; it must have %d (from "
                                       "get_unique_id())" % (len(uid_bytes), UNIQUE_ID_BYTES))
        for name, v in (("rank", rank), ("size", size)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidArgumentError("%s=%r must be an int" % (name, v))
        uid = _lib.UniqueId()
        ctypes.memmove(ctypes.addressof(uid), uid_bytes, UNIQUE_ID_BYTES)
        _check(lib.hfrCommInitRank(ctypes.byref(handle), size, uid, rank),
               what="hfrCommInitRank")
    else:
        raise InvalidArgumentError("init() takes either no arguments (environment) or all of "
                                   "rank=, size= and unique_id=")
    if not handle.value:
        raise InternalError("communicator initialization returned success but no handle",
                            code=_errors.INTERNAL_ERROR)
    return Communicator(handle)


class Communicator:
    """A communicator of `size` ranks. Not created directly: see hfreduce.init()."""

    def __init__(self, handle):
        self._lib = _library()
        self._handle = handle
        self._lock = threading.Lock()
        self._pending = {}  # id(Request) -> Request, not yet waited: keeps the buffers alive
        self._state = "live"
        r, n = ctypes.c_int(), ctypes.c_int()
        _check(self._lib.hfrCommUserRank(handle, ctypes.byref(r)), handle, "hfrCommUserRank")
        _check(self._lib.hfrCommCount(handle, ctypes.byref(n)), handle, "hfrCommCount")
        self._rank, self._size = r.value, n.value

    # -- properties -----------------------------------------------------------------------

    @property
    def rank(self):
        return self._rank

    @property
    def size(self):
        return self._size

    @property
    def closed(self):
        return self._state != "live"

    def _live_handle(self):
        if self._state != "live":
            raise InvalidUsageError("the communicator was %s; create a new one with "
                                    "hfreduce.init()" % self._state,
                                    code=_errors.INVALID_USAGE)
        return self._handle

    def __repr__(self):
        return "<hfreduce.Communicator rank %d of %d%s>" % (
            self._rank, self._size, "" if self._state == "live" else ", " + self._state)

    # -- collectives ------------------------------------------------------------------------

    def all_reduce(self, x, op="sum"):
        """Reduces x across all ranks, in place; returns x. x is a contiguous, writable numpy
        array or CPU torch tensor of a supported dtype; op is sum, prod, max, min or avg."""
        code = op_code(op)
        ptr, count, dtype = describe(x)
        h = self._live_handle()
        _check(self._lib.hfrAllReduce(ptr, ptr, count, dtype, code, h), h, "hfrAllReduce")
        return x

    def all_reduce_async(self, x, op="sum"):
        """Starts an in-place allreduce of x and returns a Request at once. x must not be
        touched until request.done() is True or request.wait() returned."""
        code = op_code(op)
        ptr, count, dtype = describe(x)
        with self._lock:
            h = self._live_handle()
            req = _lib.hfrRequest_t()
            _check(self._lib.hfrAllReduceAsync(ptr, ptr, count, dtype, code, h,
                                               ctypes.byref(req)), h, "hfrAllReduceAsync")
            r = Request(self, req, x)
            self._pending[id(r)] = r
        return r

    # -- health and teardown -------------------------------------------------------------

    def async_error(self):
        """None while healthy; otherwise the Error that broke the communicator (not raised)."""
        h = self._live_handle()
        res = ctypes.c_int()
        _check(self._lib.hfrCommGetAsyncError(h, ctypes.byref(res)), h, "hfrCommGetAsyncError")
        if res.value == _errors.SUCCESS:
            return None
        msg = _decode(self._lib.hfrGetLastError(h))
        return _errors.error_class(res.value)(
            msg, code=res.value, description=_decode(self._lib.hfrGetErrorString(res.value)))

    def destroy(self):
        """Completes pending collectives and frees the communicator. Idempotent. Raises the
        first error of a pending request that had not been waited, or of hfrCommDestroy."""
        with self._lock:
            if self._state != "live":
                return
            pending = list(self._pending.values())
        first = None
        for r in pending:  # requests must be released before the communicator is freed
            try:
                r.wait()
            except Error as e:
                first = first or e
        with self._lock:
            self._state = "destroyed"
            h, self._handle = self._handle, None
        try:
            _check(self._lib.hfrCommDestroy(h), h, "hfrCommDestroy")
        except Error as e:
            first = first or e
        if first is not None:
            raise first

    def abort(self):
        """Fails pending collectives with AbortedError and frees the communicator without
        waiting for the other ranks. Idempotent."""
        with self._lock:
            if self._state != "live":
                return
            self._state = "aborted"
            h, self._handle = self._handle, None
            pending = list(self._pending.values())
            self._pending.clear()
        for r in pending:
            # After hfrCommAbort the requests belong to a freed communicator: they are
            # never passed to the library again (their small C handles are leaked).
            r._orphan()
        _check(self._lib.hfrCommAbort(h), None, "hfrCommAbort")

    def _forget(self, r):
        with self._lock:
            self._pending.pop(id(r), None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.destroy()
        else:
            # An exception in the block: the other ranks may never reach the same collectives,
            # so do not wait for them.
            self.abort()
        return False


class Request:
    """The handle of an asynchronous allreduce. Holds a reference to the buffer."""

    def __init__(self, comm, handle, buffer):
        self._comm = comm
        self._handle = handle
        self.buffer = buffer
        self._lock = threading.Lock()
        self._error = None
        self._finished = False

    def done(self):
        """True when the allreduce has completed (successfully or not); wait() then returns
        (or raises) at once."""
        with self._lock:
            if self._finished:
                return True
            res = ctypes.c_int()
            _check(self._comm._lib.hfrTest(self._handle, ctypes.byref(res)),
                   self._comm._handle, "hfrTest")
            return bool(res.value)

    def wait(self):
        """Blocks until the allreduce completes; returns the buffer or raises its error.
        May be called again: returns (or raises) the same."""
        with self._lock:
            if not self._finished:
                code = self._comm._lib.hfrWait(self._handle)
                self._finished = True
                self._handle = None
                if code != _errors.SUCCESS:
                    try:
                        _raise(code, self._comm._handle, "hfrWait")
                    except Error as e:
                        self._error = e
                self._comm._forget(self)
        if self._error is not None:
            raise self._error
        return self.buffer

    def _orphan(self):
        with self._lock:
            if not self._finished:
                self._finished = True
                self._handle = None
                self._error = AbortedError("the communicator was aborted before this request "
                                           "was waited", code=_errors.ABORTED)

    def __repr__(self):
        return "<hfreduce.Request %s>" % ("finished" if self._finished else "pending")
