#!/usr/bin/env bash
# Builds HFReduce in release mode and installs the C header, libhfreduce.so, hfreduce.pc and
# the tools under PREFIX:
#   PREFIX/include/hfreduce.h  PREFIX/lib/libhfreduce.so  PREFIX/lib/pkgconfig/hfreduce.pc
#   PREFIX/bin/hfrun  PREFIX/bin/hfr-bench  PREFIX/bin/hfr-topo
# Then: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig cc prog.c $(pkg-config --cflags --libs hfreduce)
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: scripts/install.sh PREFIX" >&2; exit 2; fi
cd "$(dirname "$0")/.."
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
swift build -c release --product hfreduce
swift build -c release --product hfrun
swift build -c release --product hfr-bench
swift build -c release --product hfr-topo
bin=$(swift build -c release --show-bin-path)
version=$(sed -n 's/^#define HFR_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' include/hfreduce.h | paste -sd.)
install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/bin"
install -m 644 include/hfreduce.h "$prefix/include/hfreduce.h"
install -m 755 "$bin/libhfreduce.so" "$prefix/lib/libhfreduce.so"
install -m 755 "$bin/hfrun" "$bin/hfr-bench" "$bin/hfr-topo" "$prefix/bin/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" hfreduce.pc.in > "$prefix/lib/pkgconfig/hfreduce.pc"
echo "installed HFReduce $version under $prefix"
