"""Data-parallel training of a small MLP with HFReduce, compared with torch.distributed (gloo).

    hfrun -n 4 -- /usr/bin/python3 Examples/python/train_ddp.py [--steps 100] [--bucket-mb 1]

Every rank starts from the same weights (fixed seed) and trains on its own shard of a synthetic
classification data set. Gradients are packed into ~1 MiB buckets in reverse parameter order
(the order backward produces them); as soon as the last gradient of a bucket has been
accumulated, the bucket's allreduce (op="avg") starts asynchronously, overlapping with the rest
of the backward pass. All of them are waited before optimizer.step().

At the end the script checks that every rank holds bit-identical parameters and that the loss
fell, then runs the same training with the same bucketing over torch.distributed's gloo backend
(and torch's own DistributedDataParallel, for reference) and compares step times. Exits
non-zero if parameters differ between ranks or the loss did not fall.

libhfreduce.so: set HFREDUCE_LIBRARY, or install the package with the library next to it; when
run from the source tree, <repo>/python and <repo>/.build/release are used.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
try:
    import hfreduce
except ImportError:
    sys.path.insert(0, os.path.join(REPO, "python"))
    import hfreduce
if "HFREDUCE_LIBRARY" not in os.environ:
    _built = os.path.join(os.environ.get("HFR_BUILD_DIR", os.path.join(REPO, ".build", "release")),
                          "libhfreduce.so")
    if os.path.exists(_built):
        os.environ["HFREDUCE_LIBRARY"] = _built

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

torch.set_num_threads(1)


# ---- the model and the data ----------------------------------------------------------------

IN, HIDDEN, CLASSES = 64, 384, 10


def make_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
        torch.nn.Linear(HIDDEN, CLASSES),
    )


def make_shard(seed, rank, world, n_total=16384):
    """The whole data set is the same on every rank (same seed); rank r keeps rows r::world."""
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(n_total, IN, generator=g)
    teacher = torch.randn(IN, CLASSES, generator=g)
    y = (torch.tanh(x @ teacher) + 0.3 * torch.randn(n_total, CLASSES, generator=g)).argmax(1)
    return x[rank::world].contiguous(), y[rank::world].contiguous()


# ---- gradient buckets, reduced asynchronously during backward -----------------------------------


class Bucket:
    def __init__(self, params):
        self.params = params
        n = sum(p.numel() for p in params)
        self.flat = torch.zeros(n, dtype=params[0].dtype)
        self.slices = {}
        off = 0
        for p in params:
            self.slices[p] = (off, p.numel())
            off += p.numel()
        self.pending = len(params)
        self.handle = None


class BucketedAllReduce:
    """Hooks on each parameter's AccumulateGrad node (torch 1.13 has no post-accumulate hook
    on tensors; this is what torch's DDP does): after a parameter's .grad has been accumulated,
    its gradient is copied into its bucket; a full bucket's allreduce is started at once.
    Buckets are started strictly in index order, so every rank issues the same collectives in
    the same order whatever order the hooks fire in.

    `start(flat)` starts an allreduce-average of `flat` in place and returns something with
    .wait(); that is the only part that depends on the communication library.
    """

    def __init__(self, model, start, bucket_bytes):
        self.start = start
        params = [p for p in model.parameters() if p.requires_grad]
        self.buckets, cur, size = [], [], 0
        for p in reversed(params):
            cur.append(p)
            size += p.numel() * p.element_size()
            if size >= bucket_bytes:
                self.buckets.append(Bucket(cur))
                cur, size = [], 0
        if cur:
            self.buckets.append(Bucket(cur))
        self.bucket_of = {p: b for b in self.buckets for p in b.params}
        self.next_to_start = 0
        self._acc_nodes = []  # keep the AccumulateGrad nodes (and so the hooks) alive
        for p in params:
            node = p.expand_as(p).grad_fn.next_functions[0][0]
            node.register_hook(self._make_hook(p))
            self._acc_nodes.append(node)

    def _make_hook(self, p):
        def hook(*_):
            b = self.bucket_of[p]
            off, n = b.slices[p]
            b.flat[off:off + n].copy_(p.grad.reshape(-1))
            b.pending -= 1
            if b.pending == 0:
                self._start_ready()
        return hook

    def _start_ready(self):
        while self.next_to_start < len(self.buckets) and \
                self.buckets[self.next_to_start].pending == 0:
            b = self.buckets[self.next_to_start]
            b.handle = self.start(b.flat)
            self.next_to_start += 1

    def finish(self):
        """Waits every bucket's allreduce and copies the averaged gradients back into .grad."""
        if self.next_to_start != len(self.buckets):
            missing = [i for i, b in enumerate(self.buckets) if b.pending]
            raise RuntimeError("buckets %s never became ready (unused parameters?)" % missing)
        for b in self.buckets:
            b.handle.wait()
            for p in b.params:
                off, n = b.slices[p]
                p.grad.copy_(b.flat[off:off + n].view_as(p.grad))
            b.handle = None
            b.pending = len(b.params)
        self.next_to_start = 0


# ---- training ---------------------------------------------------------------------------------


def train(args, rank, world, make_reducer=None, wrap=None):
    """Returns (per-step losses, mean step time in seconds over the steps after warmup,
    the model)."""
    model = make_model(args.seed)
    if wrap is not None:
        model = wrap(model)
    reducer = make_reducer(model) if make_reducer else None
    x, y = make_shard(args.seed, rank, world)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(args.seed + 100 + rank)
    losses, times = [], []
    for step in range(args.steps):
        idx = torch.randint(0, x.shape[0], (args.batch,), generator=g)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        if reducer is not None:
            reducer.finish()
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    warm = min(args.warmup, args.steps - 1)
    return losses, sum(times[warm:]) / len(times[warm:]), model


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64, help="per-rank batch size")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--bucket-mb", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=5, help="steps left out of the step time")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--no-gloo", action="store_true", help="skip the torch.distributed runs")
    args = ap.parse_args()
    bucket_bytes = int(args.bucket_mb * 1024 * 1024)
    failed = []

    # ---- HFReduce ----
    comm = hfreduce.init()
    rank, world = comm.rank, comm.size
    say0 = (lambda *a: print(*a, flush=True)) if rank == 0 else (lambda *a: None)
    say0("hfreduce %d (%s), %d ranks, %d steps, batch %d per rank, %.1f MiB buckets"
         % (hfreduce.version(), hfreduce.library_path(), world, args.steps, args.batch,
            args.bucket_mb))

    def hfr_reducer(model):
        r = BucketedAllReduce(model, lambda flat: comm.all_reduce_async(flat, op="avg"),
                              bucket_bytes)
        say0("model: %d parameters in %d buckets of %s elements"
             % (sum(p.numel() for p in model.parameters()), len(r.buckets),
                [b.flat.numel() for b in r.buckets]))
        return r

    losses, t_hfr, model = train(args, rank, world, hfr_reducer)
    params = flat_params(model)

    # Bit-identical parameters on every rank: elementwise max and min over ranks equal ours.
    hi, lo = params.clone(), params.clone()
    comm.all_reduce(hi, op="max")
    comm.all_reduce(lo, op="min")
    same_here = torch.equal(hi, params) and torch.equal(lo, params)
    ok = torch.tensor([1 if same_here else 0], dtype=torch.int32)
    comm.all_reduce(ok, op="min")
    identical = bool(ok.item())
    if not identical:
        failed.append("parameters differ between ranks (max |hi-lo| = %g)"
                      % (hi - lo).abs().max().item())

    # Loss: averaged over ranks per step, then first 10 vs last 10 steps.
    curve = torch.tensor(losses, dtype=torch.float64)
    comm.all_reduce(curve, op="avg")
    first, last = curve[:10].mean().item(), curve[-10:].mean().item()
    if not last < first:
        failed.append("loss did not fall (first-10 mean %.4f, last-10 mean %.4f)" % (first, last))
    print("hfreduce: loss %.4f -> %.4f, parameters identical on all ranks: %s"
          % (first, last, identical), flush=True)
    print("step time: %.2f ms (hfreduce)" % (t_hfr * 1e3), flush=True)

    # ---- torch.distributed, gloo ----
    t_gloo = t_ddp = None
    if not args.no_gloo:
        token = os.environ.get("HFR_JOB_TOKEN")
        if token:
            store = os.path.join(tempfile.gettempdir(), "hfr_train_ddp_%s.store" % token)
            init_method = "file://" + store
        else:
            store = None
            init_method = "tcp://%s:%d" % (os.environ.get("MASTER_ADDR", "127.0.0.1"),
                                           int(os.environ["MASTER_PORT"]) + 1)
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world)

        def gloo_reducer(model):
            def start(flat):
                work = dist.all_reduce(flat, op=dist.ReduceOp.SUM, async_op=True)

                class Avg:
                    def wait(self):
                        work.wait()
                        flat.div_(world)
                return Avg()
            return BucketedAllReduce(model, start, bucket_bytes)

        g_losses, t_gloo, g_model = train(args, rank, world, gloo_reducer)
        g_params = flat_params(g_model)
        t = torch.tensor([(params - g_params).abs().max().item()], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        print("step time: %.2f ms (gloo, same bucketing), hfreduce/gloo ratio %.2f "
              "(max |param diff| vs the hfreduce run: %.2g)"
              % (t_gloo * 1e3, t_hfr / t_gloo, t.item()), flush=True)

        def ddp_wrap(model):
            return torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
        _, t_ddp, _ = train(args, rank, world, wrap=ddp_wrap)
        print("step time: %.2f ms (torch DDP over gloo, bucket_cap_mb=%g)"
              % (t_ddp * 1e3, args.bucket_mb), flush=True)
        dist.barrier()
        dist.destroy_process_group()
        if store and rank == 0:
            try:
                os.unlink(store)
            except OSError:
                pass

    # ---- summary: the slowest rank's step time is what the job runs at ----
    times = torch.tensor([t_hfr, t_gloo or 0.0, t_ddp or 0.0], dtype=torch.float64)
    comm.all_reduce(times, op="max")
    comm.destroy()
    if rank == 0:
        line = "SUMMARY %d ranks: hfreduce %.2f ms/step" % (world, times[0] * 1e3)
        if t_gloo is not None:
            line += ", gloo %.2f ms/step (ratio hfreduce/gloo %.2f), torch DDP+gloo %.2f ms/step" \
                % (times[1] * 1e3, times[0] / times[1], times[2] * 1e3)
        line += "; loss %.3f -> %.3f; params identical: %s; %s" % (
            first, last, identical, "OK" if not failed else "FAILED: " + "; ".join(failed))
        print(line, flush=True)
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
