#!/usr/bin/python3
"""Tests of the hfreduce Python binding.

Runs real multi-rank jobs with hfrun (Tests/python/worker.py) plus a few single-process checks.
Works as a plain script (prints "N passed, M failed, K skipped" and exits non-zero on failure)
and under pytest if it is installed:

    /usr/bin/python3 Tests/python/test_hfreduce.py [-k substring] [-v]
    /usr/bin/python3 -m pytest Tests/python/test_hfreduce.py

hfrun and libhfreduce.so are taken from <repo>/.build/release, or from $HFR_BUILD_DIR.
Every hfrun job is bounded with --timeout 120.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("HFR_BUILD_DIR") or os.path.join(REPO, ".build", "release")
HFRUN = os.path.join(BUILD, "hfrun")
LIB = os.path.join(BUILD, "libhfreduce.so")
PYTHON = sys.executable or "/usr/bin/python3"
WORKER = os.path.join(HERE, "worker.py")
PYPKG = os.path.join(REPO, "python")
VERBOSE = "-v" in sys.argv

# Per-check outcomes collected from worker output, for the final tally: name -> status.
CHECKS = {}


class Skip(Exception):
    pass


def skip(why):
    if "pytest" in sys.modules:
        import pytest
        pytest.skip(why)
    raise Skip(why)


def env_for_jobs(**extra):
    env = dict(os.environ)
    env["HFREDUCE_LIBRARY"] = LIB
    env["PYTHONPATH"] = PYPKG + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HFR_TIMEOUT", "60")
    env.update(extra)
    return env


def need_build():
    for p in (HFRUN, LIB):
        if not os.path.exists(p):
            skip("%s not built (swift build -c release --product hfreduce / hfrun, "
                       "or set HFR_BUILD_DIR)" % p)


def run_job(nranks, mode, env=None, timeout=120):
    need_build()
    cmd = [HFRUN, "-n", str(nranks), "--timeout", str(timeout), "--", PYTHON, WORKER, mode]
    t0 = time.time()
    p = subprocess.run(cmd, env=env or env_for_jobs(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout + 30, text=True)
    dt = time.time() - t0
    if VERBOSE:
        print(p.stdout)
    results = {}  # check -> {rank: (status, why)}
    for line in p.stdout.splitlines():
        m = re.match(r"\[(\d+)\]\s+(PASS|FAIL|SKIP) (\S+?)(?::\s(.*))?$", line)
        if m:
            results.setdefault(m.group(3), {})[int(m.group(1))] = (m.group(2), m.group(4) or "")
        elif re.match(r"\[\d+\]\s+INFO ", line):
            print("    " + line)
    return p, results, dt


def summarize(prefix, nranks, p, results, dt, expect_ranks=None):
    expect_ranks = expect_ranks or {}
    bad = []
    for name, per_rank in sorted(results.items()):
        statuses = {s for s, _ in per_rank.values()}
        key = "%s/%s" % (prefix, name)
        want = expect_ranks.get(name, nranks)
        if "FAIL" in statuses or len(per_rank) < want:
            CHECKS[key] = "FAIL"
            whys = ["rank %d: %s" % (r, w) for r, (s, w) in sorted(per_rank.items())
                    if s == "FAIL"]
            if len(per_rank) < want:
                whys.append("only %d of %d ranks reported" % (len(per_rank), want))
            bad.append("%s: %s" % (key, "; ".join(whys)))
        elif statuses == {"SKIP"}:
            CHECKS[key] = "SKIP"
            print("    skipped %s: %s" % (key, next(iter(per_rank.values()))[1]))
        else:
            CHECKS[key] = "PASS"
    print("    %s: %d checks on %d ranks in %.1f s, hfrun exit %d"
          % (prefix, len(results), nranks, dt, p.returncode))
    if p.returncode != 0 or bad or not results:
        tail = "\n".join(p.stdout.splitlines()[-40:])
        raise AssertionError("%s failed (hfrun exit %d):\n  %s\n--- output tail ---\n%s"
                             % (prefix, p.returncode, "\n  ".join(bad), tail))


# ---- tests ----------------------------------------------------------------------------------


def test_main_4_ranks():
    # "main" covers all_reduce and the rest of the family (worker.family_checks: broadcast,
    # reduce, all_gather, reduce_scatter, all_to_all(v), barrier, send/recv, async interleaving).
    p, r, dt = run_job(4, "main")
    summarize("main-n4", 4, p, r, dt)


def test_main_3_ranks():
    # Not a power of two: other algorithm shapes, and float avg is no longer exact.
    p, r, dt = run_job(3, "main")
    summarize("main-n3", 3, p, r, dt)


def test_main_1_rank():
    p, r, dt = run_job(1, "main")
    summarize("main-n1", 1, p, r, dt)


def test_peer_abort():
    p, r, dt = run_job(4, "abort", env_for_jobs(HFR_TIMEOUT="20"))
    summarize("abort-n4", 4, p, r, dt,
              expect_ranks={"abort.self": 1, "abort.self_use_after": 1,
                            "abort.self_pending_request": 1,
                            "abort.peers_fail": 3, "abort.async_error": 3})


def test_ctrl_c():
    p, r, dt = run_job(2, "interrupt", env_for_jobs(HFR_TIMEOUT="30"))
    summarize("interrupt-n2", 2, p, r, dt, expect_ranks={"interrupt.recv": 1, "interrupt.peer": 1})


def test_count_mismatch():
    p, r, dt = run_job(4, "mismatch", env_for_jobs(HFR_TIMEOUT="20"))
    summarize("mismatch-n4", 4, p, r, dt)


def _py(code, env):
    return subprocess.run([PYTHON, "-c", code], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60)


def test_library_not_found():
    env = env_for_jobs(HFREDUCE_LIBRARY="/nonexistent/libhfreduce.so")
    code = (
        "import hfreduce\n"
        "try:\n"
        "    hfreduce.init()\n"
        "except hfreduce.LibraryNotFoundError as e:\n"
        "    assert isinstance(e, hfreduce.Error) and isinstance(e, ImportError)\n"
        "    assert '/nonexistent/libhfreduce.so' in str(e), str(e)\n"
        "    print('OK', e)\n"
    )
    p = _py(code, env)
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout


def test_library_lookup_prefix():
    need_build()
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "lib"))
        os.symlink(LIB, os.path.join(d, "lib", "libhfreduce.so"))
        env = env_for_jobs(HFREDUCE_PREFIX=d)
        env.pop("HFREDUCE_LIBRARY")
        code = ("import hfreduce, os\n"
                "print(hfreduce.library_path(), hfreduce.version())\n")
        p = _py(code, env)
        assert p.returncode == 0, p.stdout
        assert p.stdout.startswith(os.path.join(d, "lib", "libhfreduce.so")), p.stdout


def test_single_process_api():
    need_build()
    code = (
        "import hfreduce, numpy as np\n"
        "uid = hfreduce.get_unique_id()\n"
        "assert isinstance(uid, bytes) and len(uid) == 128\n"
        "assert uid != hfreduce.get_unique_id()\n"
        "v = hfreduce.version(); assert v >= 0\n"
        "with hfreduce.init(rank=0, size=1, unique_id=uid) as c:\n"
        "    assert (c.rank, c.size) == (0, 1)\n"
        "    x = np.arange(5, dtype=np.float32)\n"
        "    assert c.all_reduce(x, op='avg') is x and list(x) == [0, 1, 2, 3, 4]\n"
        "try:\n"
        "    with hfreduce.init(rank=0, size=1, unique_id=hfreduce.get_unique_id()) as c:\n"
        "        raise KeyError('boom')\n"
        "except KeyError:\n"
        "    assert c.closed and 'aborted' in repr(c)\n"
        "for rank, size in ((0, 2 ** 32 + 1), (2 ** 32, 1), (-1, 2), (2, 2), (0, 0)):\n"
        "    try:\n"
        "        hfreduce.init(rank=rank, size=size, unique_id=uid)\n"
        "        raise SystemExit('init(rank=%d, size=%d) was accepted' % (rank, size))\n"
        "    except hfreduce.InvalidArgumentError as e:\n"
        "        assert ('rank=%d' % rank) in str(e) or ('size=%d' % size) in str(e), str(e)\n"
        "print('OK', v)\n"
    )
    p = _py(code, env_for_jobs())
    assert p.returncode == 0 and "OK" in p.stdout, p.stdout


def test_pip_install():
    """`pip install ./python` works (into a scratch --target, no network, no build isolation)."""
    if subprocess.run([PYTHON, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        skip("pip not available for %s" % PYTHON)
    import shutil
    with tempfile.TemporaryDirectory() as d:
        # Build from a copy: setuptools writes build/ and *.egg-info next to pyproject.toml.
        src = os.path.join(d, "src")
        shutil.copytree(PYPKG, src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__", "libhfreduce.so"))
        d = os.path.join(d, "site")
        p = subprocess.run([PYTHON, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                            "--no-index", "--quiet", "--target", d, src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120, cwd=src)
        assert p.returncode == 0, p.stdout
        assert os.path.exists(os.path.join(d, "hfreduce", "__init__.py")), os.listdir(d)
        env = dict(os.environ, PYTHONPATH=d)
        env.pop("HFREDUCE_LIBRARY", None)
        q = _py("import hfreduce; print(hfreduce.__file__)", env)
        assert q.returncode == 0 and q.stdout.startswith(d), q.stdout


# ---- plain-script runner ----------------------------------------------------------------------


def main():
    only = None
    if "-k" in sys.argv:
        only = sys.argv[sys.argv.index("-k") + 1]
    tests = [(n, f) for n, f in sorted(globals().items(), key=lambda kv: kv[0])
             if n.startswith("test_") and callable(f) and (only is None or only in n)]
    # The quick ones first.
    tests.sort(key=lambda t: ("main" in t[0], t[0]))
    passed = failed = skipped = 0
    for name, fn in tests:
        print("%s ..." % name, flush=True)
        before = dict(CHECKS)
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("  SKIP %s: %s" % (name, e))
            continue
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("  FAIL %s: %s: %s" % (name, type(e).__name__, e))
            continue
        new = {k: v for k, v in CHECKS.items() if k not in before}
        print("  PASS %s%s" % (name, " (%d checks, %d skipped)" % (
            len(new), sum(v == "SKIP" for v in new.values())) if new else ""))
        passed += 1
    n_checks = len(CHECKS)
    c_pass = sum(v == "PASS" for v in CHECKS.values())
    c_skip = sum(v == "SKIP" for v in CHECKS.values())
    print("rank-level checks: %d passed, %d failed, %d skipped"
          % (c_pass, n_checks - c_pass - c_skip, c_skip))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
