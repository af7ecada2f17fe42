// hfr-topo: what hwloc knows about this machine (or an XML topology) and where HFReduce would
// place its threads and buffers for the NICs it uses.
//
//   hfr-topo                                  this machine, every up non-loopback interface
//   hfr-topo --nics mlx5_0 --workers 4        these HCAs or interfaces
//   hfr-topo --xml Tests/HFRTopologyTests/Topologies/fire-flyer-2.xml
//
// Exit status: 0 printed, 1 the topology or placement failed, 2 bad usage.

import Glibc
import HFRSystem
import HFRTopology

func fail(_ message: String, status: Int32) -> Never {
    fputs("hfr-topo: \(message)\n", stderr)
    exit(status)
}

let options: Options
switch parseOptions(Array(CommandLine.arguments.dropFirst())) {
case .failure(let e): fail(e.message, status: 2)
case .success(let o) where o.help:
    print(usageText)
    exit(0)
case .success(let o): options = o
}

do {
    let topology = try options.xmlFile.map { path throws(TopologyError) in try Topology.load(xmlFile: path) } ?? Topology.thisMachine()
    let workers = try options.workers ?? Environment.int("HFR_REDUCE_THREADS") ?? 1
    let nics = try chooseNICs(options, topology: topology)
    var context: PlacementContext
    if options.xmlFile == nil {
        context = try PlacementContext.thisProcess(localRank: options.localRank, localRanks: options.localRanks)
    } else {
        // A file describes another machine: this process's mask and CPU mean nothing there.
        context = PlacementContext(allowedCPUs: topology.pus, currentCPU: nil,
                                   bindingEnabled: try PlacementContext.bindingFromEnvironment(),
                                   localRank: options.localRank, localRanks: options.localRanks)
    }
    if let cpus = options.cpus { context.allowedCPUs = cpus }
    let placement = try Placement.choose(nics: nics, workers: workers, topology: topology, context: context)
    for line in Report.topology(topology) + Report.placement(placement, context: context, workers: workers) {
        print(line)
    }
} catch {
    fail(String(describing: error), status: 1)
}

/// --nics as given; else the interfaces an HFR_SOCKET_IFNAME-style selection picks: among this
/// machine's up IPv4 interfaces, or among an XML topology's network interfaces.
func chooseNICs(_ o: Options, topology: Topology) throws -> [String] {
    if let nics = o.nics { return nics }
    let spec = o.interfaceSpec ?? Environment.string("HFR_SOCKET_IFNAME")
    guard o.xmlFile != nil else {
        var names: [String] = []
        for a in try InterfaceSelection.select(spec, from: InterfaceAddress.all()) where !names.contains(a.name) {
            names.append(a.name)
        }
        return names
    }
    let interfaces = topology.networkDevices.filter { $0.kind == .network }.map(\.name)
    guard let spec else {
        guard !interfaces.isEmpty else { throw UsageError(message: "\(topology.source) has no network interface; name HCAs with --nics") }
        return interfaces
    }
    let selection = try InterfaceSelection(parsing: spec)
    let chosen = interfaces.filter { selection.matches($0) }
    guard !chosen.isEmpty else {
        throw UsageError(message: "\(spec) matches no network interface of \(topology.source); it has: \(interfaces.isEmpty ? "none" : interfaces.joined(separator: ", "))")
    }
    return chosen
}
