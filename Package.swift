// swift-tools-version:6.0
import PackageDescription

/// Release builds of the data path are compiled without overflow and bounds checks on the
/// unsafe-pointer loops (they are checked at the API boundary instead), and for the CPU they
/// run on, so that the reduction loops vectorize with the widest registers available.
let fastPath: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "HFReduce",
    products: [
        .library(name: "HFReduce", targets: ["HFReduce"]),
        // libhfreduce.so: the C ABI of include/hfreduce.h.
        .library(name: "hfreduce", type: .dynamic, targets: ["HFReduceC"]),
        .executable(name: "hfrun", targets: ["hfrun"]),
        .executable(name: "hfr-bench", targets: ["hfr-bench"]),
        .executable(name: "kernel-bench", targets: ["kernel-bench"]),
        .executable(name: "hfr-topo", targets: ["hfr-topo"]),
    ],
    targets: [
        // C shims: only what Swift cannot call directly (epoll's packed struct, sendmsg/iovec helpers).
        .target(name: "CHFRShims"),
        // Typed wrappers around the syscalls the library uses (errno as a type, fds, epoll, eventfd, threads).
        .target(name: "HFRSystem", dependencies: ["CHFRShims"]),
        // Block conversions float16/bfloat16 <-> float32, vectorized per CPU (AVX-512 / AVX2+F16C / C),
        // chosen at run time; used by HFRKernels' 16-bit float kernels.
        .target(name: "CHFRKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // Data types, reduction operations and the vectorized CPU reduction kernels.
        .target(name: "HFRKernels", dependencies: ["CHFRKernels"], swiftSettings: fastPath),
        // Wire format, sockets, links and peer connections: TCP channels, and the clear-to-write
        // frames that hand RDMA targets to senders.
        .target(name: "HFRTransport", dependencies: ["HFRSystem", "HFRKernels"], swiftSettings: fastPath),
        // Collective algorithms as schedules: double binary tree, ring. Pure and deterministic.
        .target(name: "HFRCollectives", dependencies: ["HFRKernels"]),
        // The progress engine: epoll thread, schedule executor, reduction workers, flow control,
        // and the RDMA links (queue pairs per HCA port pair, writes with immediate, completions).
        .target(name: "HFRProgress",
                dependencies: ["HFRSystem", "HFRTransport", "HFRCollectives", "HFRKernels", "HFRTopology", "HFRVerbs"],
                swiftSettings: fastPath),
        // Rendezvous through rank 0 and the launcher environment (torchrun, Open MPI, Slurm).
        .target(name: "HFRBootstrap", dependencies: ["HFRSystem", "HFRTransport"]),
        // hwloc and libnuma calls Swift cannot make directly: hwloc's inline helpers, unions and
        // bitmap iteration, loading with I/O devices kept, CPU_SET masks, mbind/get_mempolicy node masks.
        .target(name: "CHFRTopology", linkerSettings: [.linkedLibrary("hwloc"), .linkedLibrary("numa")]),
        // Machine topology from hwloc (NUMA nodes, cores, NICs and HCAs with their locality), the
        // placement of threads and buffers near the NIC, thread pinning and NUMA-bound buffers.
        .target(name: "HFRTopology", dependencies: ["CHFRTopology"]),
        // ibverbs through a table of function pointers: filled by dlopen of libibverbs.so.1 (never
        // linked, so nothing needs libibverbs to start) or by the software verbs device for tests
        // (HFR_IB_SOFT=N: shared memory + process_vm_writev between the processes of one machine).
        .target(name: "CHFRVerbs", linkerSettings: [.linkedLibrary("dl")]),
        // Typed wrappers around the verbs the RDMA transport uses: devices and HFR_IB_HCA selection,
        // PDs, memory regions and the registration cache, CQs, RC queue pairs and their connection.
        .target(name: "HFRVerbs", dependencies: ["CHFRVerbs", "HFRSystem"]),
        // The public Swift API.
        .target(name: "HFReduce",
                dependencies: ["HFRSystem", "HFRKernels", "HFRTransport", "HFRCollectives", "HFRProgress", "HFRBootstrap", "HFRTopology", "HFRVerbs"]),
        // The C header, as a Swift module, so the C ABI is implemented against its own declarations.
        .systemLibrary(name: "CHFReduceABI", path: "include"),
        // The C API (@_cdecl entry points), linked with the Swift runtime statically so that C
        // programs need nothing but libhfreduce.so.
        .target(name: "HFReduceC", dependencies: ["CHFReduceABI", "HFReduce", "HFRSystem", "HFRBootstrap", "CHFRShims"],
                linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--version-script=include/hfreduce.map"])]),
        .executableTarget(name: "hfrun", dependencies: ["HFRSystem"]),
        .executableTarget(name: "hfr-bench", dependencies: ["HFReduce", "HFRSystem"], path: "Benchmarks/hfr-bench"),
        .executableTarget(name: "kernel-bench", dependencies: ["HFRKernels"], path: "Benchmarks/kernel-bench",
                          swiftSettings: fastPath),
        // Prints cores, NUMA nodes, NICs and HCAs and the placement HFRTopology chooses (--xml FILE: another machine).
        .executableTarget(name: "hfr-topo", dependencies: ["HFRTopology", "HFRSystem"]),
        // Tests/HFRVerbsTests' peer process: the other side of the cross-process RDMA write test.
        .executableTarget(name: "hfr-verbs-testpeer", dependencies: ["HFRVerbs", "HFRSystem"], path: "Tests/hfr-verbs-testpeer"),
        .executableTarget(name: "hfr-testworker", dependencies: ["HFReduce", "HFRSystem", "HFRTransport", "HFRTopology", "HFRBootstrap"], path: "Tests/hfr-testworker"),
        .testTarget(name: "HFRKernelsTests", dependencies: ["HFRKernels"]),
        .testTarget(name: "HFRCollectivesTests", dependencies: ["HFRCollectives"]),
        .testTarget(name: "HFRTransportTests", dependencies: ["HFRTransport"]),
        // Placement against the hwloc XML topologies in Topologies/ (read by path), pinning and NUMA binding here.
        .testTarget(name: "HFRTopologyTests", dependencies: ["HFRTopology"], exclude: ["Topologies"]),
        // The soft verbs device's checks, the Swift wrappers, and a write between two processes.
        .testTarget(name: "HFRVerbsTests", dependencies: ["HFRVerbs", "CHFRVerbs", "HFRSystem"]),
        .testTarget(name: "HFReduceTests", dependencies: ["HFReduce", "HFRBootstrap", "HFRSystem"]),
    ],
    swiftLanguageModes: [.v5]
)
