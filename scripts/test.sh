#!/usr/bin/env bash
# Builds HFReduce in release mode and runs the whole test suite: unit tests and the
# multi-process tests that launch real ranks with hfrun over loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build -c release --build-tests
# The C API tests build programs against an installed prefix, as a user would.
prefix=$(mktemp -d /tmp/hfreduce-prefix.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
scripts/install.sh "$prefix" >/dev/null
HFR_TEST_PREFIX=$prefix swift test -c release --skip-build --disable-swift-testing
# The Python binding, against the library just built.
HFR_BUILD_DIR=$(swift build -c release --show-bin-path) /usr/bin/python3 Tests/python/test_hfreduce.py
