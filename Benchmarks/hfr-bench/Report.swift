import Foundation
import HFReduce

/// The measurement of one size in one placement (out-of-place or in-place), agreed on by all ranks.
struct Measurement {
    /// Mean time per call in seconds, the maximum over ranks.
    var seconds: Double
    /// Wrong elements summed over ranks, or nil when results were not checked.
    var wrong: Int?

    /// Algorithm bandwidth in GB/s for `bytes`.
    func algbw(_ bytes: Int) -> Double { seconds > 0 ? Double(bytes) / seconds / 1e9 : 0 }
}

/// busbw = algbw * 2(n-1)/n, the allreduce bus factor (nccl-tests' PERFORMANCE.md).
func busFactor(_ ranks: Int) -> Double { 2 * Double(ranks - 1) / Double(ranks) }

/// Right-aligns `s` in `width` columns (never truncates).
func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}

/// nccl-tests' time column: fewer decimals as the number grows, 7 wide.
func ncclTime(_ us: Double) -> String {
    if us >= 10_000 { return String(format: "%7.0f", us) }
    if us >= 100 { return String(format: "%7.1f", us) }
    return String(format: "%7.2f", us)
}

/// The dtype names of the peers contract (`float32`, not nccl-tests' `float`).
func peersTypeName(_ t: DataType) -> String {
    switch t {
    case .float16: return "float16"
    case .float32: return "float32"
    case .float64: return "float64"
    default: return t.description
    }
}

/// Writes the results: stdout (rank 0 only, flushed per line, for the launcher's line prefixing)
/// and the optional CSV file.
final class Report {
    let enabled: Bool
    let csv: UnsafeMutablePointer<FILE>?
    private var busbwSum = 0.0
    private var busbwCount = 0
    private(set) var totalWrong = 0

    /// `csvPath` is opened (truncated) only when `enabled`; throws a one-line message on failure.
    init(enabled: Bool, csvPath: String?) throws {
        self.enabled = enabled
        if enabled, let csvPath {
            guard let f = fopen(csvPath, "w") else {
                throw UsageError(message: "cannot open --csv file '\(csvPath)': \(String(cString: strerror(errno)))")
            }
            csv = f
        } else {
            csv = nil
        }
    }

    deinit { if let csv { fclose(csv) } }

    /// Prints one line to stdout (rank 0 only).
    func line(_ s: String) {
        guard enabled else { return }
        print(s)
        fflush(stdout)
    }

    private func csvLine(_ s: String) {
        guard let csv else { return }
        fputs(s + "\n", csv)
        fflush(csv)
    }

    // MARK: nccl-tests format

    func ncclHeader(_ o: Options, ranks: Int, algorithm: String) {
        line("# hfr-bench allreduce: nranks \(ranks), type \(o.type), op \(o.op), algorithm \(algorithm), "
             + "iters \(o.iters), warmup \(o.warmup), check \(o.check ? 1 : 0)")
        line("#")
        line("#                                                              out-of-place                       in-place          ")
        line("#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong")
        line("#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       ")
        csvLine("size_B,count,type,redop,root,oop_time_us,oop_algbw_GBs,oop_busbw_GBs,oop_wrong,"
                + "ip_time_us,ip_algbw_GBs,ip_busbw_GBs,ip_wrong")
    }

    func ncclRow(bytes: Int, count: Int, type: DataType, op: ReduceOp, ranks: Int,
                 outOfPlace: Measurement, inPlace: Measurement) {
        var text = pad(String(bytes), 12) + "  " + pad(String(count), 12) + "  " + pad(type.description, 8)
            + "  " + pad(op.description, 6) + "  " + pad("-1", 6)
        var fields = ["\(bytes)", "\(count)", type.description, op.description, "-1"]
        for m in [outOfPlace, inPlace] {
            let algbw = m.algbw(bytes), busbw = algbw * busFactor(ranks)
            busbwSum += busbw
            busbwCount += 1
            totalWrong += m.wrong ?? 0
            let wrong = m.wrong.map(String.init) ?? "N/A"
            text += "  " + ncclTime(m.seconds * 1e6) + "  " + String(format: "%6.2f  %6.2f", algbw, busbw)
                + "  " + pad(wrong, 5)
            fields += [String(format: "%.3f", m.seconds * 1e6), String(format: "%.6f", algbw),
                       String(format: "%.6f", busbw), wrong]
        }
        line(text)
        csvLine(fields.joined(separator: ","))
    }

    func ncclFooter() {
        line("# Out of bounds values : \(totalWrong) \(totalWrong == 0 ? "OK" : "FAILED")")
        line("# Avg bus bandwidth    : " + String(format: "%g", busbwCount > 0 ? busbwSum / Double(busbwCount) : 0))
        line("#")
    }

    /// A comment line, e.g. for a size that rounds to zero elements.
    func comment(_ s: String) { line("# " + s) }

    // MARK: peers format

    func peersHeader(_ o: Options, ranks: Int, algorithm: String, host: String, placement: [String]) {
        line("# hfr-allreduce peer=\(o.label) nranks=\(ranks) dtype=\(peersTypeName(o.type)) op=\(o.op) "
             + "inplace=\(o.inPlace ? 1 : 0) min_time=\(String(format: "%g", o.minTime)) reps=\(o.reps) "
             + "warmup<=\(o.warmup) iters=[\(o.iters),\(o.maxIters)] algo=\(algorithm) check=\(o.check ? 1 : 0) "
             + "lib=\"HFReduce \(hfreduceVersionString)\" host=\(host)")
        line("# placement:" + placement.enumerated().map { " \($0.offset)@\($0.element)" }.joined())
        let columns = [("size(B)", 12), ("count", 12), ("time(us)", 12), ("algbw(GB/s)", 12), ("busbw(GB/s)", 12),
                       ("min(us)", 12), ("max(us)", 12), ("iters", 8), ("#wrong", 7)]
        line("#" + columns.map { pad($0.0, $0.1) }.joined(separator: " "))
        csvLine("size_B,count,time_us,algbw_GBs,busbw_GBs,min_us,max_us,iters,wrong")
    }

    /// One row: `times` are the repetitions' times (seconds), sorted ascending.
    func peersRow(bytes: Int, count: Int, ranks: Int, times: [Double], iters: Int, wrong: Int) {
        let n = times.count
        let median = n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2])
        let algbw = median > 0 ? Double(bytes) / median / 1e9 : 0
        let busbw = algbw * busFactor(ranks)
        totalWrong += wrong
        line(" " + pad(String(bytes), 12) + " " + pad(String(count), 12)
             + String(format: " %12.2f %12.3f %12.3f %12.2f %12.2f", median * 1e6, algbw, busbw,
                      times[0] * 1e6, times[n - 1] * 1e6)
             + " " + pad(String(iters), 8) + " " + pad(String(wrong), 7))
        csvLine("\(bytes),\(count)," + String(format: "%.3f,%.6f,%.6f,%.3f,%.3f", median * 1e6, algbw, busbw,
                                               times[0] * 1e6, times[n - 1] * 1e6) + ",\(iters),\(wrong)")
    }

    func peersFooter(label: String) {
        line("# \(label): \(totalWrong == 0 ? "OK" : "FAILED"), total #wrong=\(totalWrong)")
    }
}
