#!/usr/bin/env python3
"""Per-round ratios of HFReduce's busbw to the best peer's, from the output of run.sh.

Launches here differ by up to 4x, and the medians of separate launch sets can put a peer ahead
that lost most rounds. Within one round the peers ran back to back, so the ratio per round is
the fairer comparison. A file may hold several sittings (appended); each "## round 1 of"
starts a new one.

    Benchmarks/loopback/paired.py Benchmarks/results/alltoall-2026-12-06.txt [--last K]
"""
import re
import statistics
import sys

PEERS = ("mpi-tcp-a2a", "gloo-a2a", "mpi-tcp", "gloo")


def sittings(path):
    """Yields, per sitting, {round: {size: {peer: busbw}}}."""
    rounds, r, peer = {}, None, None
    for line in open(path):
        m = re.match(r"## round (\d+) of", line)
        if m:
            r = int(m.group(1))
            if r == 1 and rounds:
                yield rounds
                rounds = {}
            continue
        m = re.match(r"## bench: (\S+?),", line)
        if m:
            peer = m.group(1)
            continue
        m = re.match(r"\s+(\d+)\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s", line)
        if m and r is not None and peer:
            rounds.setdefault(r, {}).setdefault(int(m.group(1)), {})[peer] = float(m.group(2))
    if rounds:
        yield rounds


def main():
    args = sys.argv[1:]
    last = None
    if "--last" in args:
        i = args.index("--last")
        last = int(args[i + 1])
        del args[i:i + 2]
    for path in args:
        found = list(sittings(path))
        for k, rounds in enumerate(found[-last:] if last else found):
            print(f"{path}, sitting {len(found) - (last or len(found)) + k + 1} of {len(found)}: hfreduce / best peer, per round")
            sizes = sorted({s for v in rounds.values() for s in v})
            for s in sizes:
                ratios = []
                for _, v in sorted(rounds.items()):
                    d = v.get(s, {})
                    best = max((d.get(p, 0.0) for p in PEERS), default=0.0)
                    if "hfreduce" in d and best > 0:
                        ratios.append(d["hfreduce"] / best)
                if ratios:
                    print(f"  {s:>10}  median {statistics.median(ratios):.2f}  [{' '.join(f'{x:.2f}' for x in ratios)}]")


if __name__ == "__main__":
    main()
