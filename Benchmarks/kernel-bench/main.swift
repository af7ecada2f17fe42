// kernel-bench: throughput of the CPU reduction kernels against one core's `a += b` bandwidth.
//
//   kernel-bench [--bytes N] [--iters N]
//
// Every figure is GB/s of output: bytes of `a` (the reduced buffer) written per second, median
// over `--iters` timed runs after warming the pages. Exits non-zero if float32 sum reaches less
// than 80% of the plain `a += b` loop.

import HFRKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func usage() -> Never {
    print("usage: kernel-bench [--bytes N] [--iters N]")
    exit(2)
}

var bytes = 64 << 20
var iters = 11
var argv = CommandLine.arguments.dropFirst().makeIterator()
while let arg = argv.next() {
    switch arg {
    case "--bytes": guard let v = argv.next().flatMap({ Int($0) }), v >= 64 else { usage() }; bytes = v
    case "--iters": guard let v = argv.next().flatMap({ Int($0) }), v >= 1 else { usage() }; iters = v
    case "-h", "--help": usage()
    default: usage()
    }
}
bytes &= ~63

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

let a = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
let b = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
defer { a.deallocate(); b.deallocate() }

/// Fills both buffers with small, normal values of `type` (no NaN, no subnormals, no overflow
/// over a few dozen accumulations), which also faults every page in.
func fill(_ type: DataType) {
    let n = bytes / type.size
    for (buf, seed) in [(a, 1), (b, 2)] {
        for i in 0..<n {
            let v = Float((i &* 7 &+ seed) % 61) * 0.25 + 1.0      // 1.0 ... 16.0
            switch type {
            case .float32: buf.storeBytes(of: v, toByteOffset: i * 4, as: Float.self)
            case .float64: buf.storeBytes(of: Double(v), toByteOffset: i * 8, as: Double.self)
            case .bfloat16: buf.storeBytes(of: HalfConversions.floatToBfloat16(v), toByteOffset: i * 2, as: UInt16.self)
            case .float16: buf.storeBytes(of: HalfConversions.floatToFloat16(v), toByteOffset: i * 2, as: UInt16.self)
            case .int32, .uint32: buf.storeBytes(of: Int32(v), toByteOffset: i * 4, as: Int32.self)
            case .int64, .uint64: buf.storeBytes(of: Int64(v), toByteOffset: i * 8, as: Int64.self)
            case .int8, .uint8: buf.storeBytes(of: Int8(v), toByteOffset: i, as: Int8.self)
            }
        }
    }
}

/// The reference: a plain float32 `a += b` loop, compiled with the same flags as the kernels.
@inline(never)
func plainAdd(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) {
    for i in 0..<n { x[i] += y[i] }
}

func timeOnce(_ body: () -> Void) -> Double {
    let t0 = now()
    body()
    return Double(bytes) / (now() - t0) / 1e9
}

func runBaseline() -> Double {
    timeOnce { plainAdd(a.assumingMemoryBound(to: Float.self), b.assumingMemoryBound(to: Float.self), bytes / 4) }
}

func runKernel(_ type: DataType, _ op: ReduceOp) -> Double {
    timeOnce { ReductionKernels.reduce(a, b, count: bytes / type.size, type: type, op: op) }
}

func fmt(_ x: Double, _ digits: Int = 2) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (x * p).rounded() / p
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let frac = s.distance(from: dot, to: s.endIndex) - 1
        if frac < digits { s += String(repeating: "0", count: digits - frac) }
    }
    return s
}

/// The C API's spelling of a type (DataType's description is nccl-tests' `half`, `float`, ...).
func name(_ type: DataType) -> String {
    switch type {
    case .float16: return "float16"
    case .float32: return "float32"
    case .float64: return "float64"
    default: return type.description
    }
}

func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }

print("kernel-bench: \(bytes) bytes per array (\(bytes >> 20) MiB), \(iters) timed runs, median GB/s of output")

// Baseline and float32 sum are timed interleaved so that both see the same machine conditions.
fill(.float32)
_ = runBaseline(); _ = runKernel(.float32, .sum)              // warm-up
var baseRuns: [Double] = [], f32Runs: [Double] = []
for _ in 0..<iters {
    baseRuns.append(runBaseline())
    f32Runs.append(runKernel(.float32, .sum))
}
let base = median(baseRuns)
let f32 = median(f32Runs)
print("\(pad("a += b (float32 loop)", 24)) \(pad(fmt(base), 7)) GB/s")

var results: [(String, Double)] = [("float32 sum", f32)]
let others: [(DataType, ReduceOp)] = [(.bfloat16, .sum), (.float16, .sum), (.float64, .sum),
                                      (.int32, .sum), (.float32, .max),
                                      (.bfloat16, .prod), (.bfloat16, .max), (.bfloat16, .min),
                                      (.float16, .prod), (.float16, .max), (.float16, .min)]
for (type, op) in others {
    fill(type)
    _ = runKernel(type, op)
    var runs: [Double] = []
    for _ in 0..<iters { runs.append(runKernel(type, op)) }
    results.append(("\(name(type)) \(op)", median(runs)))
}
// finishAverage (in place, one buffer): ranks 2 keeps the 1...16 fill normal over all the runs.
for type in [DataType.float32, .bfloat16, .float16] {
    fill(type)
    let run = { timeOnce { ReductionKernels.finishAverage(a, count: bytes / type.size, type: type, ranks: 2) } }
    _ = run()
    var runs: [Double] = []
    for _ in 0..<iters { runs.append(run()) }
    results.append(("\(name(type)) finishAverage", median(runs)))
}
for (name, gbs) in results {
    print("\(pad(name, 24)) \(pad(fmt(gbs), 7)) GB/s  \(pad(fmt(100 * gbs / base, 1), 6))% of a+=b")
}
let pct = 100 * f32 / base
print("float32 sum reaches \(fmt(pct, 1))% of a+=b")
exit(pct >= 80 ? 0 : 1)
