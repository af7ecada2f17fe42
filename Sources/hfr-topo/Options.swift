import HFRTopology

/// hfr-topo's command line.
struct Options {
    var xmlFile: String?
    /// NIC or HCA names given with --nics.
    var nics: [String]?
    /// An HFR_SOCKET_IFNAME-style selection (`eth`, `^lo,docker`, `=eth0`).
    var interfaceSpec: String?
    var workers: Int?
    var cpus: CPUSet?
    var localRank = 0
    var localRanks = 1
    var help = false
}

struct UsageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

let usageText = """
usage: hfr-topo [--xml FILE] [--nics NAME,...] [IFNAME-SPEC] [--workers N] [--cpus LIST]
                [--local-rank R --local-ranks N]

Prints the machine's packages, NUMA nodes (with memory), cores, network interfaces and HCAs
(with their NUMA node and nearest cores) and GPUs as hwloc sees them, then where HFReduce would
run its progress and reduction threads and place its buffers for the NICs it uses.

  --xml FILE        load an hwloc XML topology (lstopo --of xml) instead of this machine
  --nics A,B        place for these interfaces or HCAs (mlx5_0, mlx5_0:1, eth0)
  IFNAME-SPEC       or choose interfaces as HFR_SOCKET_IFNAME does (eth, ^docker,lo, =eth0);
                    default: HFR_SOCKET_IFNAME, else every up non-loopback interface (of the XML
                    file: every network interface in it)
  --workers N       reduction worker threads (default: HFR_REDUCE_THREADS, else 1)
  --cpus LIST       assume this affinity mask (default: this process's; all PUs of an XML file)
  --local-rank R, --local-ranks N
                    this rank's place among N ranks on the host (they split a node's cores)
Environment: HFR_NUMA_BIND=0 turns pinning and buffer binding off (still printed, marked off).
"""

func parseOptions(_ args: [String]) -> Result<Options, UsageError> {
    var o = Options()
    var i = 0
    func value(_ flag: String) throws(UsageError) -> String {
        i += 1
        guard i < args.count else { throw UsageError(message: "\(flag) needs a value") }
        return args[i]
    }
    func count(_ flag: String, _ text: String, min: Int) throws(UsageError) -> Int {
        guard let n = Int(text), n >= min else { throw UsageError(message: "\(flag) \(text): expected a whole number >= \(min)") }
        return n
    }
    do throws(UsageError) {
        while i < args.count {
            let a = args[i]
            switch a {
            case "-h", "--help": o.help = true
            case "--xml": o.xmlFile = try value(a)
            case "--nics":
                let names = try value(a).split(separator: ",").map(String.init).filter { !$0.isEmpty }
                guard !names.isEmpty else { throw UsageError(message: "--nics names no NIC") }
                o.nics = names
            case "--workers": o.workers = try count(a, try value(a), min: 0)
            case "--cpus":
                let text = try value(a)
                do { o.cpus = try CPUSet(parsing: text) } catch { throw UsageError(message: "--cpus: \(error)") }
            case "--local-rank": o.localRank = try count(a, try value(a), min: 0)
            case "--local-ranks": o.localRanks = try count(a, try value(a), min: 1)
            default:
                guard !a.hasPrefix("-") else { throw UsageError(message: "unknown option \(a) (hfr-topo -h lists them)") }
                guard o.interfaceSpec == nil else { throw UsageError(message: "more than one interface selection: \(o.interfaceSpec!) and \(a)") }
                o.interfaceSpec = a
            }
            i += 1
        }
        if o.nics != nil && o.interfaceSpec != nil {
            throw UsageError(message: "give either --nics or an interface selection, not both")
        }
        if o.localRank >= o.localRanks {
            throw UsageError(message: "--local-rank \(o.localRank) is not below --local-ranks \(o.localRanks)")
        }
    } catch {
        return .failure(error)
    }
    return .success(o)
}
