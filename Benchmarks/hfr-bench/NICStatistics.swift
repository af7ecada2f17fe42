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
    for s in stats.sorted(by: { ($0.peer, $0.link, $0.socket) < ($1.peer, $1.link, $1.socket) }) {
        lines.append("#   peer \(s.peer) link \(s.link) socket \(s.socket) \(s.local.map { "\($0)" } ?? "?") -> \(s.remote.map { "\($0)" } ?? "?"): sent \(s.bytesSent) B / \(s.framesSent) frames, received \(s.bytesReceived) B / \(s.framesReceived) frames\(s.isUp ? "" : " (down)")")
    }
    print(lines.joined(separator: "\n"))
    fflush(stdout)
}
