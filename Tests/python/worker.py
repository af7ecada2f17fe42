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
    t0 = time.time()
    try:
        r = fn(*args)
    except Exception as e:  # noqa: BLE001
        report("FAIL", name, "%s: %s | %s" % (type(e).__name__, e,
                                              traceback.format_exc().strip().splitlines()[-3]))
        return False
    if os.environ.get("WORKER_TIMES"):
        print("INFO %s took %.2f s" % (name, time.time() - t0), flush=True)
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


# ---- the rest of the collective family ----------------------------------------------------


class Backend:
    """numpy or torch buffers of one dtype, built from and compared as numpy float64."""

    def __init__(self, name, np_dt, mk, tonp):
        self.name, self.np_dt, self.mk, self.tonp = name, np_dt, mk, tonp

    def full(self, shape, v):
        return self.mk(np.full(shape, v, dtype=np.float64))


def backends(torch):
    out = [Backend("numpy.%s" % dt, dt, (lambda a, dt=dt: np.array(a, dtype=dt)),
                   (lambda b: np.asarray(b, dtype=np.float64)))
           for dt in ("float32", "int32", "float64")]
    if torch is not None:
        for name, tdt in (("float32", torch.float32), ("bfloat16", torch.bfloat16),
                          ("int64", torch.int64)):
            out.append(Backend(
                "torch.%s" % name, "float32" if name == "bfloat16" else name,
                (lambda a, tdt=tdt: torch.from_numpy(np.array(a, dtype=np.float64)).to(tdt)),
                (lambda t: t.double().numpy())))
    return out


def small(rank, n, salt=0):
    """Rank `rank`'s data: small integers, exact in every dtype including bfloat16."""
    i = np.arange(n, dtype=np.int64)
    return (((i * 5 + rank * 11 + salt * 3) % 23) - 11).astype(np.float64)


def same(got, want, what):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise AssertionError("%s: shape %s, want %s" % (what, got.shape, want.shape))
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        raise AssertionError("%s: %d wrong, first at %s: got %r want %r"
                             % (what, len(bad), tuple(bad[0]), got[tuple(bad[0])],
                                want[tuple(bad[0])]))


def same_reduced(got, want, B, op, what):
    """As same(); float avg on a non-power-of-two rank count is compared with a tolerance."""
    if op == "avg" and np.dtype(B.np_dt).kind == "f" and SIZE & (SIZE - 1):
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                                   rtol=1e-2 if "bfloat16" in B.name else 1e-6, err_msg=what)
    else:
        same(got, want, what)


def exp_reduced(n, B, op):
    """The reduction of rank_data over all ranks, as float64 (computed in numpy)."""
    return expected(n, B.np_dt, op).astype(np.float64)


def c_broadcast(comm, B):
    for root in range(SIZE):
        for n in (0, 7, 1000) + ((70_000,) if root == SIZE - 1 else ()):
            x = B.mk(small(RANK, n))
            assert comm.broadcast(x, root=root) is x
            same(B.tonp(x), small(root, n), "root=%d n=%d" % (root, n))
    x = B.mk(small(RANK, 12).reshape(3, 4))
    comm.broadcast(x, root=SIZE - 1)
    same(B.tonp(x), small(SIZE - 1, 12).reshape(3, 4), "2-D")


REDUCE_CASES = [("sum", -1), ("max", 1), ("min", 0), ("prod", -2), ("avg", -1)]


def c_reduce(comm, B):
    for op, root in REDUCE_CASES:
        root %= SIZE
        for n in (0, 5, 3000) + ((200_000,) if op == "sum" else ()):
            data = rank_data(RANK, n, B.np_dt, op).astype(np.float64)
            x = B.mk(data)
            assert comm.reduce(x, op=op, root=root) is x
            what = "%s root=%d n=%d" % (op, root, n)
            if RANK == root:
                same_reduced(B.tonp(x), exp_reduced(n, B, op), B, op, what)
            else:
                same(B.tonp(x), data, what + " (non-root x changed)")
            # Out of place: only the root's out is written; x never changes.
            x, out = B.mk(data), B.full(n, -3)
            assert comm.reduce(x, op=op, root=root, out=out) is out
            same(B.tonp(x), data, what + " out=: x changed")
            if RANK == root:
                same_reduced(B.tonp(out), exp_reduced(n, B, op), B, op, what + " out=")
            else:
                same(B.tonp(out), np.full(n, -3.0), what + " out= (non-root out written)")


def c_all_gather(comm, B):
    for n in (0, 1, 1000, 50_000):
        want = np.stack([small(r, n) for r in range(SIZE)])
        out = comm.all_gather(B.mk(small(RANK, n)))
        same(B.tonp(out), want, "n=%d" % n)
        assert type(out) is type(B.mk(want[:0])) and out.dtype == B.mk(want[:0]).dtype
        flat = B.full(SIZE * n, -1)
        assert comm.all_gather(B.mk(small(RANK, n)), out=flat) is flat
        same(B.tonp(flat), want.reshape(-1), "n=%d flat out" % n)
        # In place: x is out[rank].
        buf = np.full((SIZE, n), -1.0)
        buf[RANK] = small(RANK, n)
        out = B.mk(buf)
        assert comm.all_gather(out[RANK], out=out) is out
        same(B.tonp(out), want, "n=%d in place" % n)
    out = comm.all_gather(B.mk(small(RANK, 6).reshape(2, 3)))
    same(B.tonp(out), np.stack([small(r, 6).reshape(2, 3) for r in range(SIZE)]), "2-D")


def c_reduce_scatter(comm, B):
    for op in OPS:
        for m in (0, 3) + ((20_000,) if op in ("sum", "max") else ()):
            data = rank_data(RANK, SIZE * m, B.np_dt, op).astype(np.float64)
            want = exp_reduced(SIZE * m, B, op)[RANK * m:(RANK + 1) * m]
            what = "%s m=%d" % (op, m)
            out = comm.reduce_scatter(B.mk(data), op=op)
            same_reduced(B.tonp(out), want, B, op, what)
            given = B.full(m, -1)
            assert comm.reduce_scatter(B.mk(data), op=op, out=given) is given
            same_reduced(B.tonp(given), want, B, op, what + " out=")
            x = B.mk(data)  # in place: out is x's own block
            blk = x[RANK * m:(RANK + 1) * m]
            comm.reduce_scatter(x, op=op, out=blk)
            same_reduced(B.tonp(blk), want, B, op, what + " in place")
    data = rank_data(RANK, SIZE * 6, B.np_dt, "sum").astype(np.float64)
    out = comm.reduce_scatter(B.mk(data.reshape(SIZE * 2, 3)))
    same(B.tonp(out), exp_reduced(SIZE * 6, B, "sum")[RANK * 6:(RANK + 1) * 6].reshape(2, 3),
         "2-D")


def a2a_value(s, d, n):
    """What rank s sends to rank d: n small integers."""
    return ((s * 4 + d) * 3 + np.arange(n) % 3).astype(np.float64)


def c_all_to_all(comm, B):
    for m in (0, 1, 1000, 30_000):
        data = np.concatenate([a2a_value(RANK, d, m) for d in range(SIZE)])
        want = np.concatenate([a2a_value(s, RANK, m) for s in range(SIZE)])
        x = B.mk(data)
        out = comm.all_to_all(x)
        same(B.tonp(out), want, "m=%d" % m)
        same(B.tonp(x), data, "m=%d: x changed" % m)
        given = B.full(SIZE * m, -1)
        assert comm.all_to_all(B.mk(data), out=given) is given
        same(B.tonp(given), want, "m=%d out=" % m)
        x = B.mk(data)
        assert comm.all_to_all(x, out=x) is x
        same(B.tonp(x), want, "m=%d in place" % m)
    x = B.mk(np.stack([a2a_value(RANK, d, 5) for d in range(SIZE)]))
    out = comm.all_to_all(x)
    assert tuple(out.shape) == (SIZE, 5), tuple(out.shape)
    same(B.tonp(out), np.stack([a2a_value(s, RANK, 5) for s in range(SIZE)]), "2-D")


def c_registered(comm):
    """Collectives in memory registered with the communicator, then deregistered; a second
    deregistration is refused."""
    data = np.concatenate([a2a_value(RANK, d, 3000) for d in range(SIZE)])
    want = np.concatenate([a2a_value(s, RANK, 3000) for s in range(SIZE)])
    x, out = data.copy(), np.zeros_like(data)
    regs = [comm.register(x), comm.register(out)]
    assert comm.all_to_all(x, out=out) is out
    same(out, want, "registered")
    for r in regs:
        r.deregister()
    expect_raises(hfreduce.InvalidArgumentError, regs[0].deregister, contains=("not a live registration",))
    expect_raises(hfreduce.InvalidArgumentError, comm.register, np.zeros(0, dtype=np.float32), contains=("size is 0",))
    out[:] = 0
    comm.all_to_all(x, out=out)
    same(out, want, "after deregistering")


def a2av_counts(variant):
    """counts[s][d]: what rank s sends rank d. Every variant has zeros."""
    c = [[0] * SIZE for _ in range(SIZE)]
    for s in range(SIZE):
        for d in range(SIZE):
            if variant == 0:
                c[s][d] = 0 if (s + 2 * d) % 3 == 0 else (s * 7 + d * 3) % 5 + 1
            elif variant == 1:  # the last rank sends nothing, rank 0 receives nothing
                c[s][d] = 0 if s == SIZE - 1 or d == 0 else s + d + 1
            else:  # large, and zero to the next rank
                c[s][d] = 0 if d == (s + 1) % SIZE and SIZE > 1 else 20_000 + 1000 * s + d
    return c


def c_all_to_all_v(comm, B):
    for variant in (0, 1, 2):
        c = a2av_counts(variant)
        sc = [c[RANK][d] for d in range(SIZE)]
        rc = [c[s][RANK] for s in range(SIZE)]
        x = B.mk(np.concatenate([a2a_value(RANK, d, sc[d]) for d in range(SIZE)]))
        out = B.full(sum(rc), -1)
        assert comm.all_to_all_v(x, sc, out, rc) is out
        want = np.concatenate([a2a_value(s, RANK, rc[s]) for s in range(SIZE)])
        same(B.tonp(out), want, "variant %d packed (send %s, recv %s)" % (variant, sc, rc))
        # Explicit displacements: blocks in reverse rank order with gaps; gaps stay untouched.
        sd, rd, xs, rs = [0] * SIZE, [0] * SIZE, 0, 0
        for p in reversed(range(SIZE)):
            sd[p], rd[p] = xs + 2, rs + 1
            xs, rs = sd[p] + sc[p], rd[p] + rc[p]
        xbuf = np.full(xs, 99.0)
        wbuf = np.full(rs + 3, -1.0)
        for p in range(SIZE):
            xbuf[sd[p]:sd[p] + sc[p]] = a2a_value(RANK, p, sc[p])
            wbuf[rd[p]:rd[p] + rc[p]] = a2a_value(p, RANK, rc[p])
        out = B.full(rs + 3, -1)
        np_counts = np.array(sc, dtype=np.int64)  # numpy ints are accepted too
        comm.all_to_all_v(B.mk(xbuf), np_counts, out, tuple(rc), send_displs=sd,
                          recv_displs=rd)
        same(B.tonp(out), wbuf, "variant %d displaced" % variant)


def c_ring(comm, B):
    if SIZE < 2:
        return "needs 2 ranks"
    right, left = (RANK + 1) % SIZE, (RANK - 1) % SIZE
    sizes = (5, 0, 100_000, 3)

    def msg(s, k, n):
        return (np.arange(n) % 7 + s * 10 + k).astype(np.float64)
    # Receives posted first, then sends; both directions at once; waited in mixed order.
    rr = [comm.recv_async(B.full(n, -1), left) for n in sizes]
    rl = [comm.recv_async(B.full(n, -1), right) for n in sizes]
    sr = [comm.send_async(B.mk(msg(RANK, k, n)), right) for k, n in enumerate(sizes)]
    sl = [comm.send_async(B.mk(msg(RANK, 10 + k, n)), left) for k, n in enumerate(sizes)]
    for h in sr + sl:
        h.wait()
    for k, (h, n) in reversed(list(enumerate(zip(rr, sizes)))):
        same(B.tonp(h.wait()), msg(left, k, n), "from left #%d" % k)
    for k, (h, n) in enumerate(zip(rl, sizes)):
        same(B.tonp(h.wait()), msg(right, 10 + k, n), "from right #%d" % k)
    # Sends first (the handle keeps the temporary alive), then blocking receives.
    hs = [comm.send_async(B.mk(msg(RANK, 20 + k, 1000)), right) for k in range(3)]
    import gc
    gc.collect()
    for k in range(3):
        y = B.full(1000, -1)
        assert comm.recv(y, left) is y
        same(B.tonp(y), msg(left, 20 + k, 1000), "blocking recv #%d" % k)
    for h in hs:
        h.wait()
    # Blocking both ways: even ranks send first, odd ranks receive first.
    y = B.full(10, -1)
    if RANK % 2 == 0:
        comm.send(B.mk(msg(RANK, 30, 10)), right)
        comm.recv(y, left)
    else:
        comm.recv(y, left)
        comm.send(B.mk(msg(RANK, 30, 10)), right)
    same(B.tonp(y), msg(left, 30, 10), "blocking ring")


def c_interleaved(comm, torch):
    import gc
    mk_bf16 = (lambda a: torch.from_numpy(a).to(torch.bfloat16)) if torch else \
        (lambda a: a.astype(np.float32))
    n = 40_000
    root = SIZE - 1
    a = np.full(n, RANK + 1.0, np.float32)
    b = mk_bf16(small(RANK, n))
    c = small(RANK, 777).astype(np.int32)
    d = rank_data(RANK, SIZE * 1000, "int64", "max")
    e = np.concatenate([a2a_value(RANK, p, 500) for p in range(SIZE)])
    cnt = a2av_counts(0)
    sc = [cnt[RANK][p] for p in range(SIZE)]
    rc = [cnt[s][RANK] for s in range(SIZE)]
    f = np.concatenate([a2a_value(RANK, p, sc[p]) for p in range(SIZE)]).astype(np.int32)
    g = mk_bf16(rank_data(RANK, 3000, "float32", "sum"))
    hs = {}
    hs["all_reduce"] = comm.all_reduce_async(a, op="sum")
    if SIZE > 1:  # point-to-point in the middle of collectives: not in the collective order
        right, left = (RANK + 1) % SIZE, (RANK - 1) % SIZE
        hs["recv"] = comm.recv_async(np.zeros(5000, np.float64), left)
        hs["send"] = comm.send_async(np.full(5000, float(RANK)), right)
    hs["broadcast"] = comm.broadcast_async(b, root=root)
    hs["all_gather"] = comm.all_gather_async(c)
    hs["barrier"] = comm.barrier_async()
    hs["reduce_scatter"] = comm.reduce_scatter_async(d, op="max")
    hs["all_to_all"] = comm.all_to_all_async(e)
    hs["all_to_all_v"] = comm.all_to_all_v_async(f, sc, np.zeros(sum(rc), np.int32), rc)
    hs["reduce"] = comm.reduce_async(g, op="sum", root=1 % SIZE)
    hs["all_reduce2"] = comm.all_reduce_async(np.full(70_000, RANK, np.int64), op="max")
    del c, d, e, f  # the requests keep them alive
    gc.collect()
    deadline = time.time() + 60
    while not hs["all_reduce2"].done():
        assert time.time() < deadline, "last request never done"
        time.sleep(0.001)
    for name in reversed(list(hs)):
        h = hs[name]
        got = h.wait()
        if name == "all_reduce":
            assert got is a and (a == SIZE * (SIZE + 1) / 2).all()
        elif name == "recv":
            same(got, np.full(5000, float(left)), name)
        elif name == "send":
            pass
        elif name == "broadcast":
            assert got is b
            same(np.asarray(b.float() if torch else b, np.float64),
                 np.asarray(mk_bf16(small(root, n)).float() if torch
                            else small(root, n), np.float64), name)
        elif name == "all_gather":
            same(got, np.stack([small(r, 777) for r in range(SIZE)]), name)
        elif name == "barrier":
            assert got is None
        elif name == "reduce_scatter":
            same(got, expected(SIZE * 1000, "int64", "max")[RANK * 1000:(RANK + 1) * 1000],
                 name)
        elif name == "all_to_all":
            same(got, np.concatenate([a2a_value(s, RANK, 500) for s in range(SIZE)]), name)
        elif name == "all_to_all_v":
            same(got, np.concatenate([a2a_value(s, RANK, rc[s]) for s in range(SIZE)]), name)
        elif name == "reduce":
            if RANK == 1 % SIZE:
                want = expected(3000, "float32", "sum")
                same(got.float().numpy() if torch else got, want, name)
        elif name == "all_reduce2":
            assert (got == SIZE - 1).all()
        assert h.done() and h.wait() is got


def c_family_errors(comm, torch):
    IA = hfreduce.InvalidArgumentError
    x = np.zeros(SIZE * 2, np.float32)
    for root in (SIZE, -1, True, "0", 1.0):
        expect_raises(IA, comm.broadcast, x, root, contains=["root="])
        expect_raises(IA, comm.reduce_async, x, "sum", root, contains=["root="])
    expect_raises(IA, comm.reduce, x, "mean", contains=["op="])
    expect_raises(IA, comm.reduce, x, "sum", 0, np.zeros(3, np.float32), contains=["out has 3"])
    ro = np.zeros(SIZE * 2, np.float32)
    ro.setflags(write=False)
    if SIZE > 1:  # a receiving rank writes x; the root only reads it
        expect_raises(IA, comm.broadcast, ro, (RANK + 1) % SIZE, contains=["x is read-only"])
    src = np.arange(SIZE * 2, dtype=np.float32) + 5
    src.setflags(write=False)
    got = comm.broadcast(src if RANK == 0 else np.zeros(SIZE * 2, np.float32), 0)
    assert (got == np.arange(SIZE * 2, dtype=np.float32) + 5).all(), got
    expect_raises(IA, comm.recv, ro, (RANK + 1) % SIZE, contains=["read-only"])
    # all_gather
    expect_raises(IA, comm.all_gather, x, np.zeros(SIZE * 2 + 1, np.float32),
                  contains=["out has", "all_gather needs %d" % (SIZE * SIZE * 2)])
    expect_raises(IA, comm.all_gather, x, np.zeros(SIZE * SIZE * 2, np.float64),
                  contains=["out has dtype float64", "float32"])
    expect_raises(IA, comm.all_gather, np.asfortranarray(np.zeros((2, 3), np.float32)),
                  contains=["x is Fortran-ordered"])
    ag = np.zeros(SIZE * 2, np.float32)
    if SIZE > 1:  # x inside out but not at out[rank]
        expect_raises(IA, comm.all_gather, ag[((RANK + 1) % SIZE) * 2:][:2], ag,
                      contains=["overlaps"])
    # reduce_scatter, all_to_all
    if SIZE > 1:
        odd = np.zeros(SIZE * 2 + 1, np.float32)
        expect_raises(IA, comm.reduce_scatter, odd, contains=["x has", "multiple of"])
        expect_raises(IA, comm.all_to_all_async, odd, contains=["x has", "multiple of"])
    expect_raises(IA, comm.reduce_scatter, x, "sum", np.zeros(3, np.float32),
                  contains=["out has 3", "needs 2"])
    expect_raises(IA, comm.all_to_all, x, x[1:], contains=["out has"])
    # all_to_all_v
    ones = [1] * SIZE
    out = np.zeros(SIZE, np.float32)
    xv = np.zeros(SIZE, np.float32)
    A = comm.all_to_all_v
    expect_raises(IA, A, xv, ones[:-1], out, ones, contains=["send_counts has %d" % (SIZE - 1)])
    expect_raises(IA, A, xv, ones, out, ones + [1], contains=["recv_counts has %d" % (SIZE + 1)])
    expect_raises(IA, A, xv, [-1] + ones[1:], out, ones, contains=["send_counts[0]=-1"])
    expect_raises(IA, A, xv, [1.5] + ones[1:], out, ones, contains=["send_counts[0]"])
    expect_raises(IA, A, xv, 3, out, ones, contains=["send_counts"])
    expect_raises(IA, A, xv, ones, None, ones, contains=["out is None"])
    expect_raises(IA, A, xv, ones, out, ones, [0] * (SIZE - 1) + [SIZE],
                  contains=["send_displs[%d]" % (SIZE - 1), "exceeds x"])
    expect_raises(IA, A, xv, ones, out, ones, None, [0] * SIZE if SIZE > 1 else [1],
                  contains=["recv_displs"])
    expect_raises(IA, A, xv, ones, xv, ones, contains=["overlaps", "out of place"])
    expect_raises(IA, A, xv, ones, out.astype(np.int32), ones, contains=["dtype"])
    # send / recv
    for peer in (SIZE, -1, None):
        expect_raises(IA, comm.send, x, peer, contains=["peer="])
        expect_raises(IA, comm.recv_async, x, peer, contains=["peer="])
    if torch is not None:
        expect_raises(IA, comm.all_gather, torch.zeros(4, 4).t(), contains=["contiguous"])
        expect_raises(IA, comm.all_reduce, torch.nn.Parameter(torch.ones(3)),
                      contains=["requires grad (a leaf)", "detach()"])
        expect_raises(IA, comm.all_reduce, torch.ones(3, requires_grad=True) * 2,
                      contains=["requires grad (not a leaf)"])
        expect_raises(IA, comm.all_gather, torch.zeros(2), torch.zeros(2 * SIZE,
                      dtype=torch.float64), contains=["dtype"])
    # The library's own check: a rank sending to itself.
    e = expect_raises(IA, comm.send, np.ones(3, np.float32), RANK)
    assert e.code == 4 and e.message, str(e)
    print("INFO send to self -> %s" % e, flush=True)
    # Nothing was sent: every rank is still in step.
    y = np.ones(4, np.float32)
    comm.all_reduce(y)
    assert (y == SIZE).all()
    comm.barrier()
    assert comm.async_error() is None


def family_checks(comm, torch):
    for B in backends(torch):
        check("family.broadcast.%s" % B.name, c_broadcast, comm, B)
        check("family.reduce.%s" % B.name, c_reduce, comm, B)
        check("family.all_gather.%s" % B.name, c_all_gather, comm, B)
        check("family.reduce_scatter.%s" % B.name, c_reduce_scatter, comm, B)
        check("family.all_to_all.%s" % B.name, c_all_to_all, comm, B)
        check("family.all_to_all_v.%s" % B.name, c_all_to_all_v, comm, B)
        check("family.send_recv_ring.%s" % B.name, c_ring, comm, B)
    check("family.barrier", comm.barrier)

    def polled():
        # Polling done() until True settles the request: its buffers and handle are let go
        # without a wait() (a loop that only polls used to keep every one of them).
        h = comm.all_reduce_async(np.ones(1000, np.float32))
        while not h.done():
            time.sleep(0.0001)
        assert h._keep == () and h not in hfreduce._IN_FLIGHT and id(h) not in comm._pending
        assert (h.wait() == SIZE).all()
    check("family.done_settles", polled)
    check("family.registered", c_registered, comm)
    check("family.interleaved_async", c_interleaved, comm, torch)
    check("family.errors", c_family_errors, comm, torch)


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
    family_checks(comm, sys.modules.get("torch"))
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
    if RANK == SIZE - 1:
        comm.all_reduce(x)
        # Too large to go eagerly, to a rank that never receives it: pending at the abort.
        h = comm.send_async(np.ones(1 << 20, np.float32), 0)
        check("abort.self", comm.abort)
        # wait() raises the library's own answer (hfrWait after hfrCommAbort).
        check("abort.self_pending_request",
              lambda: expect_raises(hfreduce.AbortedError, h.wait, contains=["aborted"]))
        check("abort.self_use_after",
              lambda: expect_raises(hfreduce.InvalidUsageError, comm.all_reduce, x,
                                    contains=["aborted"]))
        return
    t0 = time.time()

    def peers_fail():
        # The first all-reduce is the one the last rank completes before it aborts. It has
        # completed there, not necessarily here: the abort may overtake the last of its data
        # (on another socket), so it may fail too. The second cannot succeed.
        for n in range(2):
            try:
                comm.all_reduce(x if n == 0 else np.ones(100_000, np.float32))
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

    def a2av_mismatch():
        # Rank 0 expects one element more from every peer than the peer sends it.
        c = hfreduce.init()
        sc = [2] * SIZE
        rc = [2 + (RANK == 0 and p != 0) for p in range(SIZE)]
        try:
            c.all_to_all_v(np.ones(2 * SIZE, np.float32), sc, np.zeros(sum(rc), np.float32), rc)
        except hfreduce.Error as e:
            print("INFO all_to_all_v count mismatch -> %s: %s" % (type(e).__name__, e),
                  flush=True)
            assert isinstance(e, (hfreduce.InvalidUsageError, hfreduce.RemoteError)), type(e)
            return
        finally:
            c.abort()
        if RANK != 0:
            return "only rank 0's receive counts disagree; rank %d's call succeeded" % RANK
        raise AssertionError("mismatched all_to_all_v counts were not detected")
    check("mismatch.all_to_all_v", a2av_mismatch)


def mode_interrupt():
    """Ctrl-C while rank 0 waits in a receive rank 1 never answers: KeyboardInterrupt within a
    fraction of a second (not at HFR_TIMEOUT), and the communicator is aborted, so the
    buffer is the caller's again."""
    comm = hfreduce.init()
    x = np.zeros(1 << 20, np.float32)
    if RANK == 0:
        def interrupted():
            import signal
            import threading
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
            t0 = time.time()
            try:
                comm.recv(x, 1)
            except KeyboardInterrupt:
                dt = time.time() - t0
                print("INFO KeyboardInterrupt after %.2f s" % dt, flush=True)
                assert dt < 2, dt  # rank 1 answers (with an abort) only after 5 s
                assert comm.closed, comm
                return
            raise AssertionError("the receive returned")
        check("interrupt.recv", interrupted)
    else:
        time.sleep(5)
        check("interrupt.peer", lambda: None)
        comm.abort()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "main"
    {"main": mode_main, "abort": mode_abort, "mismatch": mode_mismatch, "interrupt": mode_interrupt}[mode]()
    sys.stdout.flush()
    sys.exit(1 if failures else 0)
