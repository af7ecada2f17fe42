import HFRSystem
import HFRTransport
import HFRVerbs

/// `HFR_TRANSPORT`: how data moves between ranks.
public enum TransportChoice: String, Sendable, CaseIterable {
    /// TCP sockets only.
    case tcp
    /// RDMA writes over ibverbs, with TCP for connection setup and control frames; creating the
    /// communicator fails, saying why, when this rank has no ACTIVE HCA port.
    case ib
    /// RDMA when this rank has an ACTIVE HCA port (to peers that have one too), else TCP.
    case auto
}

/// The HCA ports a rank offers for RDMA, as `HFR_TRANSPORT` asks, said at INFO either way.
enum TransportSelection {
    /// The ACTIVE ports (`HFR_IB_HCA`, `HFR_IB_GID_INDEX`) of the verbs implementation in use
    /// (`HFR_IB_SOFT`, else libibverbs.so.1 loaded at run time), at most `WriteTarget.maxLinks`;
    /// empty for TCP. With `ib`, no usable port is an error naming the cause (library missing, no
    /// device, no ACTIVE port); a verbs setting that does not parse is an error with `auto` too.
    static func ports(_ choice: TransportChoice, rank: Int) throws(HFRError) -> [VerbsPort] {
        if choice == .tcp {
            Log.info(rank: rank, "transport tcp (HFR_TRANSPORT=tcp)")
            return []
        }
        do {
            let library = try VerbsLibrary.load()
            var ports = try library.activePortsFromEnvironment()
            if ports.count > WriteTarget.maxLinks {
                Log.info(rank: rank, "\(ports.count) ACTIVE HCA ports; RDMA uses the first \(WriteTarget.maxLinks) (HFR_IB_HCA selects others)")
                ports = Array(ports.prefix(WriteTarget.maxLinks))
            }
            let source = library.kind == .soft ? "the software verbs device (HFR_IB_SOFT=\(Environment.string("HFR_IB_SOFT") ?? "?"))" : "libibverbs.so.1"
            let described = ports.map { p in
                "\(p.name) (" + (p.attributes.linkLayer == .ethernet ? "RoCE, GID \(p.gid) index \(p.gidIndex)" : "InfiniBand, LID \(p.attributes.lid)")
                    + ", MTU \(p.attributes.activeMTU))"
            }
            Log.info(rank: rank, "transport ib (HFR_TRANSPORT=\(choice.rawValue)): \(ports.count) ACTIVE HCA port(s) of \(source): "
                     + described.joined(separator: ", ") + "; data by RDMA writes with immediate to peers that have HCA ports too, TCP for setup and control frames")
            return ports
        } catch {
            if case .configuration = error { throw .invalidArgument("rank \(rank): \(error)") }
            if choice == .ib { throw HFRError(.systemError, "rank \(rank): HFR_TRANSPORT=ib, but RDMA cannot be used here: \(error)") }
            Log.info(rank: rank, "transport tcp: HFR_TRANSPORT=auto found no usable RDMA port (\(error))")
            return []
        }
    }
}
