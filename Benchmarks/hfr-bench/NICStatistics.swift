import Glibc
import HFReduce
import HFRSystem

/// Prints, for this rank, the bytes and frames each local NIC carried (sockets grouped by their
/// local address) and each socket's counters.
func printNICStatistics(_ comm: Communicator) {
    let stats = comm.linkStatistics()
    let names = Dictionary(InterfaceAddress.all().map { ($0.ip, $0.name) }, uniquingKeysWith: { a, _ in a })
    var perNIC: [String: (sent: Int, received: Int, frames: Int)] = [:]
    for s in stats {
        let nic = s.local.map { names[$0.ip].map { "\($0) (\(s.local!.host))" } ?? $0.host } ?? "?"
        var t = perNIC[nic] ?? (0, 0, 0)
        t.sent += s.bytesSent; t.received += s.bytesReceived; t.frames += s.framesSent + s.framesReceived
        perNIC[nic] = t
    }
    var lines = ["# nic-stats rank \(comm.rank): \(stats.count) socket(s)"]
    for (nic, t) in perNIC.sorted(by: { $0.key < $1.key }) {
        lines.append("#   nic \(nic): sent \(t.sent) B, received \(t.received) B, \(t.frames) frames")
    }
    // RDMA links: what each HCA port wrote and took (the data; their sockets carry control frames).
    var perHCA: [String: (written: Int, writes: Int, received: Int, writesReceived: Int)] = [:]
    for r in stats.compactMap(\.rdma) {
        var t = perHCA[r.device] ?? (0, 0, 0, 0)
        t.written += r.bytesWritten; t.writes += r.writes; t.received += r.bytesReceived; t.writesReceived += r.writesReceived
        perHCA[r.device] = t
    }
    for (hca, t) in perHCA.sorted(by: { $0.key < $1.key }) {
        lines.append("#   hca \(hca): wrote \(t.written) B in \(t.writes) writes, received \(t.received) B in \(t.writesReceived) writes")
    }
    for r in comm.registrationStatistics() {
        lines.append("#   hca \(r.port) registrations: \(r.cachedRegions) cached (\(r.cachedBytes) B), \(r.hits) hits, "
                     + "\(r.cachedRegistrations) cached registrations, \(r.collectiveRegistrations) per collective, \(r.refusals) refused, "
                     + "\(r.callerRanges) registered by the caller (\(r.callerBytes) B)")
    }
    for s in stats.sorted(by: { ($0.peer, $0.link, $0.socket) < ($1.peer, $1.link, $1.socket) }) {
        let rdma = s.rdma.map { ", RDMA \($0.device)\($0.isUp ? "" : " (down)"): wrote \($0.bytesWritten) B / \($0.writes) writes, received \($0.bytesReceived) B / \($0.writesReceived) writes" } ?? ""
        lines.append("#   peer \(s.peer) link \(s.link) socket \(s.socket) \(s.local.map { "\($0)" } ?? "?") -> \(s.remote.map { "\($0)" } ?? "?"): sent \(s.bytesSent) B / \(s.framesSent) frames, received \(s.bytesReceived) B / \(s.framesReceived) frames\(s.isUp ? "" : " (down)")\(rdma)")
    }
    print(lines.joined(separator: "\n"))
    fflush(stdout)
}
