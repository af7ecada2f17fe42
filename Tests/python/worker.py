"""One rank of the hfreduce Python binding tests; started by test_hfreduce.py under hfrun.

    hfrun -n 4 --timeout 120 -- /usr/bin/python3 Tests/python/worker.py MODE

Prints one line per check: "PASS name", "FAIL name: why" or "SKIP name: why", and exits 1 if
any check failed. MODE is one of: main, abort, mismatch.
"""

import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "python"))  # run against the source tree

import numpy as np  # noqa: E402

import hfreduce  # noqa: E402

RANK = int(os.environ["RANK"])
SIZE = int(os.environ["WORLD_SIZE"])
failures = 0


def report(status, name, why=""):
    global failures
    if status == "FAIL":
        failures += 1
    print("%s %s%s" % (status, name, ": " + why if why else ""), flush=True)


def check(name, fn, *args):
    """Runs fn(*args); it passes unless it raises. A str return value means 'skip: why'."""
    try:
        r = fn(*args)
    except Exception as e:  # noqa: BLE001
        report("FAIL", name, "%s: %s | %s" % (type(e).__name__, e,
                                              traceback.format_exc().strip().splitlines()[-3]))
        return False
    if isinstance(r, str):
        report("SKIP", name, r)
    else:
        report("PASS", name)
    return True


def expect_raises(exc_type, fn, *args, contains=()):
    try:
        fn(*args)
    except exc_type as e:
        text = str(e)
        for c in contains:
            if c.lower() not in text.lower():
                raise AssertionError("message %r does not contain %r" % (text, c))
        return e
    raise AssertionError("expected %s, nothing raised" % exc_type.__name__)


# ---- reference data -----------------------------------------------------------------------

NP_DTYPES = ["float32", "float64", "float16", "int8", "uint8", "int32", "int64", "uint32",
             "uint64"]
OPS = ["sum", "prod", "max", "min", "avg"]
SIZES = [0, 1, 7, 1000, 70_000, 1_100_000]  # crosses the doubling/halving/tree thresholds


def rank_data(rank, n, dtype, op):
    """Rank `rank`'s input: small integers, so every result is exact in every dtype."""
    i = np.arange(n, dtype=np.int64)
    unsigned = np.dtype(dtype).kind == "u"
    if op == "prod":
        v = ((i + rank) % 3) - (0 if unsigned else 1)  # {-1,0,1} or {0,1,2}
        v = np.where(v == 0, 2, v) if not unsigned else np.where(v == 0, 1, v)
    else:
        v = ((i * 7 + rank * 13) % 29) - (0 if unsigned else 14)
    return v.astype(dtype)


def expected(n, dtype, op, size=SIZE):
    stack = np.stack([rank_data(r, n, dtype, op).astype(np.float64) for r in range(size)])
    if op == "sum":
        e = stack.sum(0)
    elif op == "prod":
        e = stack.prod(0)
    elif op == "max":
        e = stack.max(0)
    elif op == "min":
        e = stack.min(0)
    else:
        s = stack.sum(0)
        e = np.trunc(s / size) if np.dtype(dtype).kind in "iu" else s / size
    # The inputs are small enough that no integer result wraps around.
    return e.astype(dtype)


# ---- checks -------------------------------------------------------------------------------


def c_basics(comm):
    assert comm.rank == RANK, (comm.rank, RANK)
    assert comm.size == SIZE, (comm.size, SIZE)
    v = hfreduce.version()
    assert isinstance(v, int) and v >= 0, v
    assert comm.async_error() is None
    assert os.path.exists(hfreduce.library_path())


def c_numpy(comm, dtype, op):
    for n in SIZES:
        if n > 100_000 and op not in ("sum", "avg"):
            continue
        x = rank_data(RANK, n, dtype, op)
        out = comm.all_reduce(x, op=op)
        assert out is x
        e = expected(n, dtype, op)
        if op == "avg" and np.dtype(dtype).kind == "f" and SIZE & (SIZE - 1):
            np.testing.assert_allclose(x.astype(np.float64), e.astype(np.float64),
                                       rtol=2e-3 if dtype == "float16" else 1e-6)
        elif not np.array_equal(x, e):
            bad = np.nonzero(x != e)[0]
            raise AssertionError("n=%d: %d wrong, first at %d: got %r want %r"
                                 % (n, len(bad), bad[0], x[bad[0]], e[bad[0]]))


def c_numpy_float_random(comm):
    rng = np.random.default_rng(1234 + RANK)
    x = rng.standard_normal(100_003).astype(np.float32)
    all_x = [np.random.default_rng(1234 + r).standard_normal(100_003).astype(np.float32)
             for r in range(SIZE)]
    comm.all_reduce(x)
    np.testing.assert_allclose(x, np.sum(all_x, axis=0, dtype=np.float64), rtol=1e-5, atol=1e-5)


def c_numpy_shapes(comm):
    x = np.full((5, 6), RANK + 1, dtype=np.float64)
    comm.all_reduce(x, op=hfreduce.OPS["max"])  # enum int accepted
    assert (x == SIZE).all()
    f = np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4) * (RANK + 1))
    comm.all_reduce(f, op=0)
    np.testing.assert_array_equal(f, np.arange(12).reshape(3, 4) * (SIZE * (SIZE + 1) // 2))
    big = np.arange(40, dtype=np.int64)
    view = big[10:30]  # contiguous view with an offset: only that part changes
    comm.all_reduce(view, op="sum")
    np.testing.assert_array_equal(big[:10], np.arange(10))
    np.testing.assert_array_equal(big[10:30], np.arange(10, 30) * SIZE)
    np.testing.assert_array_equal(big[30:], np.arange(30, 40))
    s = np.array(float(RANK), dtype=np.float32)  # 0-d
    comm.all_reduce(s, op="MAX")
    assert float(s) == SIZE - 1


def c_async(comm):
    xs = [np.full(n, RANK + 1, dtype=np.float32) for n in (1, 100, 50_000, 600_000)]
    hs = [comm.all_reduce_async(x, op="sum") for x in xs]
    total = SIZE * (SIZE + 1) / 2
    deadline = time.time() + 60
    while not hs[-1].done():
        assert time.time() < deadline, "last request never done"
        time.sleep(0.001)
    for h, x in zip(hs, xs):
        assert h.buffer is x
        assert h.wait() is x
        assert h.done()
        assert (x == total).all(), x[:4]
        assert h.wait() is x  # a second wait returns the same
    # Many in flight, mixed ops, waited in reverse order.
    ys = [np.full(1000, RANK + i, dtype=np.int64) for i in range(16)]
    hs = [comm.all_reduce_async(y, op=OPS[i % 5]) for i, y in enumerate(ys)]
    for i in reversed(range(16)):
        hs[i].wait()
        vals = np.array([r + i for r in range(SIZE)], dtype=np.float64)
        want = {"sum": vals.sum(), "prod": vals.prod(), "max": vals.max(), "min": vals.min(),
                "avg": np.trunc(vals.sum() / SIZE)}[OPS[i % 5]]
        assert (ys[i] == want).all(), (i, OPS[i % 5], ys[i][0], want)
    # The handle keeps the buffer alive when the caller drops its reference.
    h = comm.all_reduce_async(np.full(10_000, 2.0), op="prod")
    import gc
    gc.collect()
    assert (h.wait() == 2.0 ** SIZE).all()


def c_errors_numpy(comm):
    x = np.zeros(10, dtype=np.float32)
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, x[::2], contains=["contiguous"])
    e = expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce,
                      np.zeros((4, 4), np.float32).T[1:], contains=["not contiguous"])
    assert e.code == 4, e.code
    for bad in (np.complex64, np.bool_, np.float128 if hasattr(np, "float128") else object,
                np.int16):
        arr = np.zeros(3, dtype=bad)
        expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, arr,
                      contains=[str(np.dtype(bad))])
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce,
                  np.zeros(3, dtype=">f4"), contains=["byte order"])
    ro = np.zeros(3, np.float32)
    ro.setflags(write=False)
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, ro, contains=["read-only"])
    for op in ("median", "", None, 5, -1, True, 2.0):
        expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, x, op, contains=["op="])
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce_async, x, "mean",
                  contains=["op="])
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, [1.0, 2.0],
                  contains=["list"])
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, bytearray(8))
    # Nothing was sent: the communicator still works and is in step on every rank.
    y = np.ones(4, np.float32)
    comm.all_reduce(y)
    assert (y == SIZE).all()
    assert comm.async_error() is None
    assert issubclass(hfreduce.InvalidArgumentError, hfreduce.Error)
    assert issubclass(hfreduce.HFRTimeoutError, TimeoutError)


def c_torch(comm, torch):
    t_dtypes = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                "bfloat16": torch.bfloat16, "int8": torch.int8, "uint8": torch.uint8,
                "int32": torch.int32, "int64": torch.int64}
    for name, tdt in t_dtypes.items():
        np_dt = "float32" if name == "bfloat16" else name
        for op in OPS:
            for n in (0, 5, 3000, 200_000):
                t = torch.from_numpy(rank_data(RANK, n, np_dt, op).copy()).to(tdt)
                out = comm.all_reduce(t, op=op)
                assert out is t
                e = torch.from_numpy(expected(n, np_dt, op).copy()).to(tdt)
                if op == "avg" and tdt.is_floating_point and SIZE & (SIZE - 1):
                    torch.testing.assert_close(t.double(), e.double(), rtol=1e-2, atol=1e-6)
                elif not torch.equal(t, e):
                    bad = (t != e).nonzero()
                    raise AssertionError("%s %s n=%d: %d wrong, first %s got %s want %s" % (
                        name, op, n, len(bad), bad[0].tolist(), t[bad[0]].tolist(),
                        e[bad[0]].tolist()))


def c_torch_bf16_rounding(comm, torch):
    # bfloat16 is reduced in float32 and rounded to nearest even at each combining step, so
    # the result is that of some association order of the per-rank values.
    vals = ([1.0, 2.0 ** -8, 2.0 ** -8, 0.0] + [0.0] * SIZE)[:SIZE]
    t = torch.tensor([vals[RANK]] * 8, dtype=torch.bfloat16)
    comm.all_reduce(t)
    exact = torch.tensor([sum(vals)], dtype=torch.float32).to(torch.bfloat16).item()
    allowed = {exact, 1.0}  # 1 + 2^-8 rounds (to even) to 1 when it is formed first
    got = set(t.float().tolist())
    assert len(got) == 1 and got <= allowed, (got, allowed)
    if got != {exact}:
        print("INFO bfloat16 sum of %s = %s (pairwise rounding), exact-then-rounded %s"
              % (vals, got.pop(), exact), flush=True)


def c_torch_views_async(comm, torch):
    base = torch.arange(100, dtype=torch.float32)
    v = base[20:40]  # storage offset
    comm.all_reduce(v, op="sum")
    assert torch.equal(base[:20], torch.arange(20, dtype=torch.float32))
    assert torch.equal(base[20:40], torch.arange(20, 40, dtype=torch.float32) * SIZE)
    ts = [torch.full((n,), float(RANK), dtype=torch.float64) for n in (3, 30_000, 300_000)]
    hs = [comm.all_reduce_async(t, op="max") for t in ts]
    for h, t in zip(hs, ts):
        assert h.wait() is t
        assert bool((t == SIZE - 1).all())
    # A non-leaf tensor produced under no_grad, and a detached parameter.
    p = torch.nn.Parameter(torch.ones(6))
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, p, contains=["requires grad"])
    comm.all_reduce(p.data, op="sum")
    assert bool((p.detach() == SIZE).all())


def c_torch_errors(comm, torch):
    t = torch.zeros(4, 4)
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, t.t(), contains=["contiguous"])
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, t[:, 1], contains=["contiguous"])
    for dt in (torch.bool, torch.int16, torch.complex64):
        expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce, torch.zeros(3, dtype=dt),
                      contains=[str(dt)])
    # A tensor that is not on the CPU ('meta' stands in for CUDA on machines without a GPU).
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce,
                  torch.empty(3, device="meta"), contains=["device"])
    if torch.cuda.is_available():
        expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce,
                      torch.zeros(3, device="cuda"), contains=["cuda"])
    expect_raises(hfreduce.InvalidArgumentError, comm.all_reduce,
                  torch.zeros(3).to_sparse(), contains=["layout"])


def c_init_rank(comm):
    # The new communicator's ranks are reversed. Its rank 0 (this job's last rank) makes the
    # id -- get_unique_id reserves the rendezvous port in the calling process -- and the id
    # travels to the others through the first communicator.
    buf = np.zeros(hfreduce.UNIQUE_ID_BYTES, dtype=np.uint8)
    if RANK == SIZE - 1:
        uid = hfreduce.get_unique_id()
        assert isinstance(uid, bytes) and len(uid) == 128
        buf[:] = np.frombuffer(uid, dtype=np.uint8)
    comm.all_reduce(buf, op="max")
    uid = buf.tobytes()
    with hfreduce.init(rank=SIZE - 1 - RANK, size=SIZE, unique_id=uid) as c2:
        assert c2.rank == SIZE - 1 - RANK and c2.size == SIZE
        x = np.full(1000, c2.rank, dtype=np.int32)
        h = c2.all_reduce_async(x, op="max")
        y = np.full(1000, RANK, dtype=np.int32)
        comm.all_reduce(y, op="min")  # the two communicators are independent
        h.wait()
        assert (x == SIZE - 1).all() and (y == 0).all()
    assert c2.closed
    c2.destroy()  # idempotent


def c_init_errors():
    expect_raises(hfreduce.InvalidArgumentError, hfreduce.init, 0, 2)
    expect_raises(hfreduce.InvalidArgumentError, hfreduce.init, 0, 2, b"short")
    expect_raises(hfreduce.InvalidArgumentError, hfreduce.init, 0, 2, "x" * 128)
    uid = hfreduce.get_unique_id()
    # Library-side argument checks: the error carries hfrGetLastError(NULL)'s sentence.
    for rank, size in ((0, 0), (5, 2), (-1, 2)):
        e = expect_raises(hfreduce.InvalidArgumentError, hfreduce.init, rank, size, uid)
        assert e.code == 4 and e.message, (rank, size, str(e))
        print("INFO init(rank=%d, size=%d) -> %s" % (rank, size, e), flush=True)


def c_destroyed(comm_factory):
    c = comm_factory()
    c.destroy()
    x = np.ones(3, np.float32)
    for fn in (lambda: c.all_reduce(x), lambda: c.all_reduce_async(x), c.async_error):
        expect_raises(hfreduce.InvalidUsageError, fn, contains=["destroyed"])
    c.destroy()
    c.abort()  # both idempotent after destroy
    assert c.closed and "destroyed" in repr(c)


def c_destroy_waits_pending(comm_factory):
    c = comm_factory()
    x = np.full(200_000, 1.0, dtype=np.float32)
    h = c.all_reduce_async(x)
    c.destroy()  # completes and releases the request first
    assert h.done()
    assert h.wait() is x and (x == SIZE).all()


def mode_main():
    comm = hfreduce.init()
    check("basics", c_basics, comm)
    for dt in NP_DTYPES:
        for op in OPS:
            check("numpy.%s.%s" % (dt, op), c_numpy, comm, dt, op)
    check("numpy.float32.random_sum", c_numpy_float_random, comm)
    check("numpy.shapes_views", c_numpy_shapes, comm)
    check("async", c_async, comm)
    check("errors.numpy", c_errors_numpy, comm)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError as e:
        for name in ("torch.dtypes_ops", "torch.bf16_rounding", "torch.views_async",
                     "torch.errors"):
            report("SKIP", name, "torch not importable (%s)" % e)
    else:
        check("torch.dtypes_ops", c_torch, comm, torch)
        check("torch.bf16_rounding", c_torch_bf16_rounding, comm, torch)
        check("torch.views_async", c_torch_views_async, comm, torch)
        check("torch.errors", c_torch_errors, comm, torch)
    check("init_rank_unique_id", c_init_rank, comm)
    check("init_errors", c_init_errors)
    check("destroyed_comm", c_destroyed, hfreduce.init)
    check("destroy_waits_pending", c_destroy_waits_pending, hfreduce.init)
    check("still_healthy", lambda: comm.async_error() is None or (_ for _ in ()).throw(
        AssertionError(str(comm.async_error()))))
    check("destroy", comm.destroy)


def mode_abort():
    """The last rank aborts; the others' next collective must fail (not hang) with an
    hfreduce.Error, and async_error() must then report it."""
    comm = hfreduce.init()
    x = np.ones(1000, np.float32)
    comm.all_reduce(x)
    if RANK == SIZE - 1:
        h = comm.all_reduce_async(np.ones(100_000, np.float32))
        check("abort.self", comm.abort)
        # The request was pending at the abort: wait() raises AbortedError from Python. (Calling
        # hfrWait on it after hfrCommAbort crashes the process inside libhfreduce: "Fatal
        # error: Attempted to read an unowned reference but object 0x... was already
        # destroyed", so the binding never passes such a request to the library again.)
        check("abort.self_pending_request",
              lambda: expect_raises(hfreduce.AbortedError, h.wait, contains=["aborted"]))
        check("abort.self_use_after",
              lambda: expect_raises(hfreduce.InvalidUsageError, comm.all_reduce, x,
                                    contains=["aborted"]))
        return
    t0 = time.time()

    def peers_fail():
        for _ in range(3):  # the abort may land after one more collective started
            try:
                comm.all_reduce(np.ones(100_000, np.float32))
            except hfreduce.Error as e:
                print("INFO after peer abort: %s: %s (%.2f s)" % (type(e).__name__, e,
                                                                 time.time() - t0), flush=True)
                assert isinstance(e, (hfreduce.RemoteError, hfreduce.AbortedError)), type(e)
                return
        raise AssertionError("collectives kept succeeding after a peer aborted")
    check("abort.peers_fail", peers_fail)

    def async_err():
        err = comm.async_error()
        assert isinstance(err, hfreduce.Error), err
        print("INFO async_error: %r %s" % (err, err), flush=True)
    check("abort.async_error", async_err)
    comm.abort()


def mode_mismatch():
    """Ranks disagreeing on the count: the library reports hfrInvalidUsage (not a hang)."""
    comm = hfreduce.init()

    def mismatch():
        x = np.ones(100 + (RANK == 0) * 10, np.float32)
        try:
            comm.all_reduce(x)
        except hfreduce.Error as e:
            print("INFO mismatch -> %s: %s" % (type(e).__name__, e), flush=True)
            assert isinstance(e, (hfreduce.InvalidUsageError, hfreduce.RemoteError)), type(e)
            return
        raise AssertionError("mismatched counts were not detected")
    check("mismatch.count", mismatch)
    comm.abort()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "main"
    {"main": mode_main, "abort": mode_abort, "mismatch": mode_mismatch}[mode]()
    sys.stdout.flush()
    sys.exit(1 if failures else 0)
