"""Finding and loading libhfreduce.so, and the prototypes of its C ABI."""

import ctypes
import ctypes.util
import os
import sys

from ._errors import LibraryNotFoundError

LIBRARY_NAME = "libhfreduce.so"
UNIQUE_ID_BYTES = 128


class UniqueId(ctypes.Structure):
    """hfrUniqueId: passed BY VALUE to hfrCommInitRank."""
    _fields_ = [("internal", ctypes.c_char * UNIQUE_ID_BYTES)]


hfrComm_t = ctypes.c_void_p
hfrRequest_t = ctypes.c_void_p
hfrResult_t = ctypes.c_int


def candidate_paths():
    """The places tried, in order: (description, path or None for find_library)."""
    places = []
    env = os.environ.get("HFREDUCE_LIBRARY")
    if env:
        places.append(("$HFREDUCE_LIBRARY", env))
    here = os.path.dirname(os.path.abspath(__file__))
    places.append(("next to the package", os.path.join(here, LIBRARY_NAME)))
    places.append(("sys.prefix", os.path.join(sys.prefix, "lib", LIBRARY_NAME)))
    prefix = os.environ.get("HFREDUCE_PREFIX")
    if prefix:
        places.append(("$HFREDUCE_PREFIX", os.path.join(prefix, "lib", LIBRARY_NAME)))
    return places


def load():
    tried = []
    for what, path in candidate_paths():
        if what == "$HFREDUCE_LIBRARY" or os.path.exists(path):
            try:
                return _declare(ctypes.CDLL(path)), path
            except OSError as e:
                tried.append("%s (%s): %s" % (path, what, e))
                if what == "$HFREDUCE_LIBRARY":
                    # An explicit choice that fails is an error, not a reason to pick another.
                    break
                continue
        tried.append("%s (%s): not found" % (path, what))
    else:
        found = ctypes.util.find_library("hfreduce")
        if found:
            try:
                return _declare(ctypes.CDLL(found)), found
            except OSError as e:
                tried.append("%s (ctypes.util.find_library): %s" % (found, e))
        else:
            tried.append("ctypes.util.find_library('hfreduce'): not found")
    raise LibraryNotFoundError(
        "cannot load libhfreduce.so; set HFREDUCE_LIBRARY=/path/to/libhfreduce.so or "
        "HFREDUCE_PREFIX. Tried:\n  " + "\n  ".join(tried))


def _declare(lib):
    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    P = ctypes.POINTER
    fn("hfrGetErrorString", ctypes.c_char_p, hfrResult_t)
    fn("hfrGetLastError", ctypes.c_char_p, hfrComm_t)
    fn("hfrGetVersion", hfrResult_t, P(ctypes.c_int))
    fn("hfrGetUniqueId", hfrResult_t, P(UniqueId))
    fn("hfrCommInitRank", hfrResult_t, P(hfrComm_t), ctypes.c_int, UniqueId, ctypes.c_int)
    fn("hfrCommInitFromEnv", hfrResult_t, P(hfrComm_t))
    fn("hfrCommCount", hfrResult_t, hfrComm_t, P(ctypes.c_int))
    fn("hfrCommUserRank", hfrResult_t, hfrComm_t, P(ctypes.c_int))
    fn("hfrCommGetAsyncError", hfrResult_t, hfrComm_t, P(hfrResult_t))
    fn("hfrCommAbort", hfrResult_t, hfrComm_t)
    fn("hfrCommDestroy", hfrResult_t, hfrComm_t)
    fn("hfrAllReduce", hfrResult_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
       ctypes.c_int, ctypes.c_int, hfrComm_t)
    fn("hfrAllReduceAsync", hfrResult_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
       ctypes.c_int, ctypes.c_int, hfrComm_t, P(hfrRequest_t))
    # The rest of the collective family; each Async twin takes an hfrRequest_t* last.
    V, N, I, C = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, hfrComm_t
    NP = P(ctypes.c_size_t)
    family = {
        "hfrBroadcast": (V, V, N, I, I, C),                # send, recv, count, type, root
        "hfrReduce": (V, V, N, I, I, I, C),                # send, recv, count, type, op, root
        "hfrAllGather": (V, V, N, I, C),                   # send, recv, sendcount, type
        "hfrReduceScatter": (V, V, N, I, I, C),            # send, recv, recvcount, type, op
        "hfrAllToAll": (V, V, N, I, C),                    # send, recv, countPerPeer, type
        "hfrAllToAllv": (V, NP, NP, V, NP, NP, I, C),      # send, counts, displs, recv, ...
        "hfrBarrier": (C,),
        "hfrSend": (V, N, I, I, C),                        # send, count, type, peer
        "hfrRecv": (V, N, I, I, C),                        # recv, count, type, peer
    }
    for name, args in family.items():
        fn(name, hfrResult_t, *args)
        fn(name + "Async", hfrResult_t, *(args + (P(hfrRequest_t),)))
    fn("hfrCommRegister", hfrResult_t, hfrComm_t, ctypes.c_void_p, ctypes.c_size_t, P(ctypes.c_void_p))
    fn("hfrCommDeregister", hfrResult_t, hfrComm_t, ctypes.c_void_p)
    fn("hfrTest", hfrResult_t, hfrRequest_t, P(ctypes.c_int))
    fn("hfrWait", hfrResult_t, hfrRequest_t)
    fn("hfrWaitFor", hfrResult_t, hfrRequest_t, ctypes.c_double, P(ctypes.c_int))
    return lib
