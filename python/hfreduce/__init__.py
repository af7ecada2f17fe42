"""hfreduce: Python binding (ctypes) of HFReduce, CPU collectives over TCP.

    import hfreduce
    with hfreduce.init() as comm:               # from hfrun / torchrun environment
        comm.all_reduce(x, op="sum")            # in place on a numpy array or CPU torch tensor
        h = comm.all_reduce_async(y, op="avg")  # returns at once
        ...
        h.wait()

Also: broadcast, reduce, all_gather, reduce_scatter, all_to_all, all_to_all_v, barrier, send,
recv, each with an _async twin.

libhfreduce.so is looked up, on first use, in: $HFREDUCE_LIBRARY; next to this file;
<sys.prefix>/lib; $HFREDUCE_PREFIX/lib; ctypes.util.find_library("hfreduce").
"""

import ctypes
import operator
import threading

from . import _buffers, _errors, _interrupt, _lib
from ._buffers import DTYPE_NAMES, ITEMSIZE, OP_NAMES, OPS, describe, op_code
from ._errors import (AbortedError, Error, HFRSystemError, HFRTimeoutError, InternalError,
                      InvalidArgumentError, InvalidUsageError, LibraryNotFoundError,
                      RemoteError)

__all__ = [
    "init", "get_unique_id", "version", "library_path", "Communicator", "Request", "Registration",
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
        # The C call takes 32-bit ints: check here, before ctypes would truncate silently.
        if not 1 <= size < 2 ** 31:
            raise InvalidArgumentError("size=%d must be in 1..%d" % (size, 2 ** 31 - 1))
        if not 0 <= rank < size:
            raise InvalidArgumentError("rank=%d must be in 0..%d (size=%d)" % (rank, size - 1, size))
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


# Requests not waited for yet, whatever happens to their Communicator or handle objects: the
# library may still write into their buffers, which must not be freed (collected) meanwhile.
_IN_FLIGHT = set()


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
    #
    # Every collective has a blocking form and an _async twin that returns a Request at once.
    # The _prep_* methods do every check in Python and return (C function name, arguments
    # without the communicator, result, buffers to keep alive).

    def _run(self, prep):
        name, args, result, keep = prep
        h = self._live_handle()
        with _interrupt.blocking_call(self):  # Ctrl-C aborts the call (see _interrupt)
            code = getattr(self._lib, name)(*(args + (h,)))
        _check(code, h, name)
        return result

    def _start(self, prep):
        name, args, result, keep = prep
        name += "Async"
        with self._lock:
            h = self._live_handle()
            req = _lib.hfrRequest_t()
            _check(getattr(self._lib, name)(*(args + (h, ctypes.byref(req)))), h, name)
            r = Request(self, req, result, keep)
            self._pending[id(r)] = r
            _IN_FLIGHT.add(r)
        return r

    def _rank_arg(self, v, name):
        if isinstance(v, bool):
            raise InvalidArgumentError("%s=%r must be an int rank" % (name, v))
        try:
            v = operator.index(v)
        except TypeError:
            raise InvalidArgumentError("%s=%r must be an int rank" % (name, v)) from None
        if not 0 <= v < self._size:
            raise InvalidArgumentError("%s=%d is out of range; it must be in 0..%d"
                                       % (name, v, self._size - 1))
        return v

    def _divisible(self, count, name, what):
        if count % self._size:
            raise InvalidArgumentError(
                "%s has %d elements, not a multiple of the communicator size %d (%s)"
                % (name, count, self._size, what))
        return count // self._size

    def _out(self, out, x, dtype, count, shape, what):
        """(out, address) of an output buffer: allocated like x with `shape` when out is None,
        else checked to have `count` elements of x's dtype."""
        if out is None:
            out = _buffers.empty_like(x, shape)
        ptr, n, dt = describe(out, "out", c_order=True)
        if dt != dtype:
            raise InvalidArgumentError("out has dtype %s but x has %s; they must match"
                                       % (DTYPE_NAMES[dt], DTYPE_NAMES[dtype]))
        if n != count:
            raise InvalidArgumentError("out has %d elements (shape %s); %s needs %d (e.g. shape "
                                       "%s)" % (n, tuple(out.shape), what, count, tuple(shape)))
        return out, ptr

    @staticmethod
    def _no_overlap(a, an, b, bn, itemsize, allowed, what):
        """Refuses buffers [a, a+an) and [b, b+bn) (in elements) that overlap unless a == b
        + allowed offset (the collective's in-place form); allowed=None: no overlap at all."""
        if an == 0 or bn == 0:
            return
        if allowed is not None and a == b + allowed * itemsize:
            return
        if a < b + bn * itemsize and b < a + an * itemsize:
            raise InvalidArgumentError("out overlaps x; %s" % what)

    def all_reduce(self, x, op="sum"):
        """Reduces x across all ranks, in place; returns x. x is a contiguous, writable numpy
        array or CPU torch tensor of a supported dtype; op is sum, prod, max, min or avg."""
        return self._run(self._prep_all_reduce(x, op))

    def all_reduce_async(self, x, op="sum"):
        """Starts an in-place allreduce of x and returns a Request at once. x must not be
        touched until request.done() is True or request.wait() returned."""
        return self._start(self._prep_all_reduce(x, op))

    def _prep_all_reduce(self, x, op):
        code = op_code(op)
        ptr, count, dtype = describe(x)
        return "hfrAllReduce", (ptr, ptr, count, dtype, code), x, (x,)

    def broadcast(self, x, root=0):
        """Copies root's x into every rank's x, in place; returns x. Every rank passes an x of
        the same count and dtype."""
        return self._run(self._prep_broadcast(x, root))

    def broadcast_async(self, x, root=0):
        return self._start(self._prep_broadcast(x, root))

    def _prep_broadcast(self, x, root):
        root = self._rank_arg(root, "root")
        # The root only reads x: a read-only array is fine there.
        ptr, count, dtype = describe(x, write=self._rank != root)
        return "hfrBroadcast", (ptr, ptr, count, dtype, root), x, (x,)

    def reduce(self, x, op="sum", root=0, out=None):
        """Reduces every rank's x with op into root's out (root's x itself when out is None).
        Non-roots' x and out are left unchanged. Returns out, or x when out is None."""
        return self._run(self._prep_reduce(x, op, root, out))

    def reduce_async(self, x, op="sum", root=0, out=None):
        return self._start(self._prep_reduce(x, op, root, out))

    def _prep_reduce(self, x, op, root, out):
        code = op_code(op)
        root = self._rank_arg(root, "root")
        writes_x = out is None and self._rank == root
        ptr, count, dtype = describe(x, write=writes_x, c_order=out is not None)
        if out is None:
            optr, res = ptr, x
        else:
            res, optr = self._out(out, x, dtype, count, tuple(x.shape), "reduce")
            self._no_overlap(optr, count, ptr, count, ITEMSIZE[dtype], 0,
                             "reduce writes out in place of x or into a separate buffer")
        return "hfrReduce", (ptr, optr, count, dtype, code, root), res, (x, res)

    def all_gather(self, x, out=None):
        """Gathers every rank's x into out, of shape (size, *x.shape): out[r] is rank r's x.
        out is allocated like x when None; a given out needs size * x's elements. Returns out.
        In place when x is out[rank] (a view of the rank's own block)."""
        return self._run(self._prep_all_gather(x, out))

    def all_gather_async(self, x, out=None):
        return self._start(self._prep_all_gather(x, out))

    def _prep_all_gather(self, x, out):
        ptr, count, dtype = describe(x, write=False, c_order=True)
        res, optr = self._out(out, x, dtype, count * self._size,
                              (self._size,) + tuple(x.shape), "all_gather")
        self._no_overlap(ptr, count, optr, count * self._size, ITEMSIZE[dtype], self._rank * count,
                         "all_gather is in place only when x is out[rank]")
        return "hfrAllGather", (ptr, optr, count, dtype), res, (x, res)

    def reduce_scatter(self, x, op="sum", out=None):
        """x holds size equal blocks (its element count must be a multiple of size); rank r's
        out receives the reduction of every rank's block r. out is allocated like x when None,
        of shape (x.shape[0] // size, *x.shape[1:]) if size divides x.shape[0], else
        (x.numel // size,). Returns out."""
        return self._run(self._prep_reduce_scatter(x, op, out))

    def reduce_scatter_async(self, x, op="sum", out=None):
        return self._start(self._prep_reduce_scatter(x, op, out))

    def _prep_reduce_scatter(self, x, op, out):
        code = op_code(op)
        ptr, count, dtype = describe(x, write=False, c_order=True)
        rc = self._divisible(count, "x", "reduce_scatter splits x into one block per rank")
        shape = tuple(x.shape)
        if shape and shape[0] % self._size == 0:
            shape = (shape[0] // self._size,) + shape[1:]
        else:
            shape = (rc,)
        res, optr = self._out(out, x, dtype, rc, shape, "reduce_scatter")
        self._no_overlap(optr, rc, ptr, count, ITEMSIZE[dtype], self._rank * rc,
                         "reduce_scatter is in place only when out is x's block [rank]")
        return "hfrReduceScatter", (ptr, optr, rc, dtype, code), res, (x, res)

    def all_to_all(self, x, out=None):
        """x holds size equal blocks (its element count must be a multiple of size); block p
        goes to rank p, and rank p's block r lands in this rank's out block p. out is allocated
        like x when None; out is x gives the in-place form. Returns out."""
        return self._run(self._prep_all_to_all(x, out))

    def all_to_all_async(self, x, out=None):
        return self._start(self._prep_all_to_all(x, out))

    def _prep_all_to_all(self, x, out):
        in_place = out is x
        ptr, count, dtype = describe(x, write=in_place, c_order=True)
        per = self._divisible(count, "x", "all_to_all sends one equal block to each rank")
        if in_place:
            res, optr = x, ptr
        else:
            res, optr = self._out(out, x, dtype, count, tuple(x.shape), "all_to_all")
            self._no_overlap(optr, count, ptr, count, ITEMSIZE[dtype], 0,
                             "all_to_all is in place only when out is x")
        return "hfrAllToAll", (ptr, optr, per, dtype), res, (x, res)

    def all_to_all_v(self, x, send_counts, out, recv_counts, send_displs=None, recv_displs=None):
        """All-to-all with per-rank counts, in elements (zeros allowed): send_counts[p] elements
        of x from send_displs[p] go to rank p; recv_counts[p] elements from rank p land in out
        at recv_displs[p]. Each list has size entries; displacements default to packed
        (running sums of the counts). Out of place only. Returns out."""
        return self._run(self._prep_all_to_all_v(x, send_counts, out, recv_counts,
                                                 send_displs, recv_displs))

    def all_to_all_v_async(self, x, send_counts, out, recv_counts, send_displs=None,
                           recv_displs=None):
        return self._start(self._prep_all_to_all_v(x, send_counts, out, recv_counts,
                                                   send_displs, recv_displs))

    def _counts(self, v, name):
        if _buffers.is_buffer(v) and len(v.shape) != 1:
            raise InvalidArgumentError("%s has shape %s; it must be 1-D with %d entries"
                                       % (name, tuple(v.shape), self._size))
        if isinstance(v, (str, bytes)):
            raise InvalidArgumentError("%s=%r must be a sequence of %d ints"
                                       % (name, v, self._size))
        try:
            seq = list(v)
        except TypeError:
            raise InvalidArgumentError("%s=%r must be a sequence of %d ints"
                                       % (name, v, self._size)) from None
        if len(seq) != self._size:
            raise InvalidArgumentError("%s has %d entries; it must have one per rank (%d)"
                                       % (name, len(seq), self._size))
        vals = []
        for i, c in enumerate(seq):
            try:
                if isinstance(c, bool) or type(c).__name__.startswith("bool"):
                    raise TypeError
                c = operator.index(c)
            except TypeError:
                raise InvalidArgumentError("%s[%d]=%r is not an int" % (name, i, c)) from None
            if c < 0:
                raise InvalidArgumentError("%s[%d]=%d is negative" % (name, i, c))
            vals.append(c)
        return vals

    def _prep_all_to_all_v(self, x, send_counts, out, recv_counts, send_displs, recv_displs):
        if out is None:
            raise InvalidArgumentError("out is None; all_to_all_v needs an out buffer of at "
                                       "least sum(recv_counts) elements")
        ptr, count, dtype = describe(x, write=False)
        optr, ocount, odtype = describe(out, "out")
        if odtype != dtype:
            raise InvalidArgumentError("out has dtype %s but x has %s; they must match"
                                       % (DTYPE_NAMES[odtype], DTYPE_NAMES[dtype]))
        sc = self._counts(send_counts, "send_counts")
        rc = self._counts(recv_counts, "recv_counts")
        packed = lambda c: [sum(c[:i]) for i in range(len(c))]  # noqa: E731
        sd = packed(sc) if send_displs is None else self._counts(send_displs, "send_displs")
        rd = packed(rc) if recv_displs is None else self._counts(recv_displs, "recv_displs")
        for cn, dn, c, d, buf, n in (("send_counts", "send_displs", sc, sd, "x", count),
                                     ("recv_counts", "recv_displs", rc, rd, "out", ocount)):
            for p in range(self._size):
                if c[p] and d[p] + c[p] > n:
                    raise InvalidArgumentError(
                        "%s[%d] + %s[%d] = %d + %d exceeds %s's %d elements"
                        % (dn, p, cn, p, d[p], c[p], buf, n))
        blocks = sorted((rd[p], rd[p] + rc[p], p) for p in range(self._size) if rc[p])
        for (a0, a1, p), (b0, b1, q) in zip(blocks, blocks[1:]):
            if b0 < a1:
                raise InvalidArgumentError(
                    "recv_displs: the blocks of ranks %d ([%d, %d)) and %d ([%d, %d)) of out "
                    "overlap" % (p, a0, a1, q, b0, b1))
        self._no_overlap(optr, ocount, ptr, count, ITEMSIZE[dtype], None,
                         "all_to_all_v is out of place only")
        arr = ctypes.c_size_t * self._size
        c_args = [arr(*v) for v in (sc, sd, rc, rd)]
        args = (ptr, c_args[0], c_args[1], optr, c_args[2], c_args[3], dtype)
        return "hfrAllToAllv", args, out, (x, out, c_args)

    def register(self, x):
        """Registers x with every HCA port now and keeps it so until the returned Registration
        is deregistered: collectives on buffers inside x then use that registration instead of
        registering their buffers each time (hfrCommRegister). x is kept alive until then.
        Memory the HCA refuses raises InvalidArgumentError. Over TCP it changes nothing."""
        ptr, count, dtype = describe(x, write=False)
        h = self._live_handle()
        handle = ctypes.c_void_p()
        _check(self._lib.hfrCommRegister(h, ptr, count * ITEMSIZE[dtype],
                                         ctypes.byref(handle)), h, "hfrCommRegister")
        return Registration(self, handle, x)

    def barrier(self):
        """Returns once every rank has entered the barrier."""
        return self._run(("hfrBarrier", (), None, ()))

    def barrier_async(self):
        """A Request that completes once every rank has entered the barrier; wait() returns
        None."""
        return self._start(("hfrBarrier", (), None, ()))

    def send(self, x, peer):
        """Sends x to rank `peer`, which receives it with recv() of the same count and dtype.
        Not a collective: other ranks need not call anything. Returns x."""
        return self._run(self._prep_p2p("hfrSend", x, peer))

    def send_async(self, x, peer):
        return self._start(self._prep_p2p("hfrSend", x, peer))

    def recv(self, x, peer):
        """Receives into x, in place, what rank `peer` sent with send(). Returns x."""
        return self._run(self._prep_p2p("hfrRecv", x, peer))

    def recv_async(self, x, peer):
        return self._start(self._prep_p2p("hfrRecv", x, peer))

    def _prep_p2p(self, name, x, peer):
        peer = self._rank_arg(peer, "peer")
        ptr, count, dtype = describe(x, write=name == "hfrRecv")
        return name, (ptr, count, dtype, peer), x, (x,)

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
        # The abort failed what was still pending; waiting returns at once, with what the
        # library reports (success for work that finished first), and frees the handles.
        for r in self._abort_library():
            r._settle()

    def _abort_library(self):
        """hfrCommAbort, once; returns the requests that were pending."""
        with self._lock:
            if self._state != "live":
                return []
            self._state = "aborted"
            h, self._handle = self._handle, None
            pending = list(self._pending.values())
            self._pending.clear()
        _check(self._lib.hfrCommAbort(h), None, "hfrCommAbort")
        return pending

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


class Registration:
    """Memory registered with Communicator.register; deregister() ends it (once)."""

    def __init__(self, comm, handle, buffer):
        self._comm = comm
        self._handle = handle
        self.buffer = buffer

    def deregister(self):
        """Ends the registration: later collectives register their buffers themselves again.
        Raises InvalidArgumentError when it was deregistered already."""
        h = self._comm._live_handle()
        _check(self._comm._lib.hfrCommDeregister(h, self._handle), h, "hfrCommDeregister")
        self.buffer = None

    def __repr__(self):
        return "<hfreduce.Registration %s>" % ("ended" if self.buffer is None else "live")


class Request:
    """The handle of an asynchronous collective (or send/recv). Holds references to every
    buffer it uses; `buffer` is what wait() returns (the output buffer, None for a barrier)."""

    def __init__(self, comm, handle, buffer, keep=()):
        self._comm = comm
        self._handle = handle
        self.buffer = buffer
        self._keep = keep  # all buffers (and count arrays) the library may still touch
        self._lock = threading.Lock()
        self._error = None
        self._finished = False

    def done(self):
        """True when the operation has completed (successfully or not); wait() then returns
        (or raises) at once. Never blocks: False while another thread is in wait()."""
        if not self._lock.acquire(blocking=False):
            return self._finished
        try:
            if not self._finished:
                self._wait_once(0.0)
        finally:
            self._lock.release()
        if self._finished:
            self._comm._forget(self)
        return self._finished

    def wait(self):
        """Blocks until the operation completes; returns the buffer or raises its error.
        May be called again: returns (or raises) the same. Ctrl-C (KeyboardInterrupt) while
        it waits aborts the communicator (the operation's buffers stay in use otherwise) and
        is raised."""
        self._settle()
        if self._error is not None:
            raise self._error
        return self.buffer

    # How long one wait in the library lasts before Python gets to handle signals.
    _SLICE = 0.1

    def _wait_once(self, seconds):
        """One hfrWaitFor (caller holds _lock); on completion keeps the outcome and lets the
        buffers go."""
        done = ctypes.c_int()
        code = self._comm._lib.hfrWaitFor(self._handle, seconds, ctypes.byref(done))
        if not done.value and code == _errors.SUCCESS:
            return
        self._finished = True
        self._handle = None
        self._keep = ()  # the library is done with the buffers
        _IN_FLIGHT.discard(self)
        if code != _errors.SUCCESS:
            try:
                _raise(code, self._comm._handle, "hfrWait")
            except Error as e:
                self._error = e

    def _settle(self):
        """Waits in the library until the operation is over and keeps the outcome."""
        others = []
        try:
            with self._lock:
                try:
                    while not self._finished:
                        self._wait_once(self._SLICE)
                except KeyboardInterrupt:
                    # The library still uses the buffers: abort (which fails and releases
                    # them), and let the outcome settle before raising.
                    others = [r for r in self._comm._abort_library() if r is not self]
                    while not self._finished:
                        self._wait_once(self._SLICE)
                    raise
        finally:
            for r in others:
                r._settle()
            self._comm._forget(self)

    def __repr__(self):
        return "<hfreduce.Request %s>" % ("finished" if self._finished else "pending")
