#!/usr/bin/env bash
# Builds HFReduce in release mode and runs the whole test suite: unit tests and the
# multi-process tests that launch real ranks with hfrun over loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build -c release --build-tests
swift test -c release --skip-build --disable-swift-testing
