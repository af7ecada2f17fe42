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
    let options: Options
    let csv: UnsafeMutablePointer<FILE>?
    private var busbwSum = 0.0
    private var busbwCount = 0
    private(set) var totalWrong = 0

    /// `csvPath` is opened (truncated) only when `enabled`; throws a one-line message on failure.
    init(enabled: Bool, options: Options) throws {
        self.enabled = enabled
        self.options = options
        if enabled, let csvPath = options.csvPath {
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

    /// nccl-tests' `redop` column: the reduction, or `none` for operations that do not reduce.
    var redopName: String { options.operation.reduces ? options.op.description : "none" }

    /// nccl-tests' `root` column: the root, or -1 for rootless operations.
    var rootColumn: Int { options.operation.isRooted ? options.root : -1 }

    func ncclHeader(_ o: Options, ranks: Int, algorithm: String) {
        var what = "# hfr-bench \(o.operation): nranks \(ranks), type \(o.type)"
        if o.operation.reduces { what += ", op \(o.op)" }
        if o.operation.isRooted { what += ", root \(o.root)" }
        if o.operation == .allreduce { what += ", algorithm \(algorithm)" }
        line(what + ", iters \(o.iters), warmup \(o.warmup), check \(o.check ? 1 : 0)")
        line("#")
        line("#                                                              out-of-place                       in-place          ")
        line("#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong")
        line("#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       ")
        csvLine("size_B,count,type,redop,root,oop_time_us,oop_algbw_GBs,oop_busbw_GBs,oop_wrong,"
                + "ip_time_us,ip_algbw_GBs,ip_busbw_GBs,ip_wrong")
    }

    /// One row: `bytes` and `count` as nccl-tests reports them (see `Operation`).
    /// A nil measurement (sendrecv in place) prints N/A and is left out of the average.
    func ncclRow(bytes: Int, count: Int, ranks: Int, outOfPlace: Measurement, inPlace: Measurement?) {
        let type = options.type.description, root = String(rootColumn)
        var text = pad(String(bytes), 12) + "  " + pad(String(count), 12) + "  " + pad(type, 8)
            + "  " + pad(redopName, 6) + "  " + pad(root, 6)
        var fields = ["\(bytes)", "\(count)", type, redopName, root]
        for m in [outOfPlace, inPlace] {
            guard let m else {
                text += "  " + pad("N/A", 7) + "  " + pad("N/A", 6) + "  " + pad("N/A", 6) + "  " + pad("N/A", 5)
                fields += ["N/A", "N/A", "N/A", "N/A"]
                continue
            }
            let algbw = m.algbw(bytes), busbw = algbw * options.operation.busFactor(ranks)
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

    /// The block header: `# hfr-allreduce ...`, or for alltoall the contract's
    /// `# hfr-alltoall ... op=alltoall inplace=0 count=per-peer size=count*N*4 busbw=algbw*(N-1)/N ...`.
    func peersHeader(_ o: Options, ranks: Int, algorithm: String, host: String, placement: [String]) {
        let common = "peer=\(o.label) nranks=\(ranks) dtype=\(peersTypeName(o.type))"
        let method = "min_time=\(String(format: "%g", o.minTime)) reps=\(o.reps) "
            + "warmup<=\(o.warmup) iters=[\(o.iters),\(o.maxIters)]"
        let tail = "check=\(o.check ? 1 : 0) lib=\"HFReduce \(hfreduceVersionString)\" host=\(host)"
        if o.operation == .alltoall {
            line("# hfr-alltoall \(common) op=alltoall inplace=\(o.inPlace ? 1 : 0) count=per-peer "
                 + "size=count*N*\(o.type.size) busbw=algbw*(N-1)/N \(method) \(tail)")
        } else {
            line("# hfr-allreduce \(common) op=\(o.op) inplace=\(o.inPlace ? 1 : 0) \(method) "
                 + "algo=\(algorithm) \(tail)")
        }
        line("# placement:" + placement.enumerated().map { " \($0.offset)@\($0.element)" }.joined())
        let columns = [("size(B)", 12), ("count", 12), ("time(us)", 12), ("algbw(GB/s)", 12), ("busbw(GB/s)", 12),
                       ("min(us)", 12), ("max(us)", 12), ("iters", 8), ("#wrong", 7)]
        line("#" + columns.map { pad($0.0, $0.1) }.joined(separator: " "))
        csvLine("size_B,count,time_us,algbw_GBs,busbw_GBs,min_us,max_us,iters,wrong")
    }

    /// One row: `times` are the repetitions' times (seconds), sorted ascending.
    /// `factor` is the operation's bus-bandwidth factor.
    func peersRow(bytes: Int, count: Int, factor: Double, times: [Double], iters: Int, wrong: Int) {
        let n = times.count
        let median = n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2])
        let algbw = median > 0 ? Double(bytes) / median / 1e9 : 0
        let busbw = algbw * factor
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
