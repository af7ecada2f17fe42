import Foundation
import XCTest
import HFRTopology

/// The shipped XML topologies, found beside this file.
enum Topologies {
    static let directory = String(#filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        .joined(separator: "/")) + "/Topologies"
    static var fireFlyer2Path: String { directory + "/fire-flyer-2.xml" }
    static var nicPerSocketPath: String { directory + "/nic-per-socket.xml" }
    static func fireFlyer2() throws -> Topology { try Topology.load(xmlFile: fireFlyer2Path) }
    static func nicPerSocket() throws -> Topology { try Topology.load(xmlFile: nicPerSocketPath) }
}

/// Runs `body` on a fresh thread (so pinning it leaves the test runner's threads alone) and
/// returns its result.
func onNewThread<T>(_ body: @escaping () throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, any Error>?
    let thread = Thread {
        result = Result { try body() }
        done.signal()
    }
    thread.start()
    done.wait()
    return try result!.get()
}

/// The calling thread's `Cpus_allowed_list` as the kernel reports it in /proc.
func procAllowedCPUs() throws -> CPUSet {
    let status = try String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else {
        throw XCTSkip("skipped: /proc/thread-self/status has no Cpus_allowed_list line")
    }
    return try CPUSet(parsing: String(line.dropFirst("Cpus_allowed_list:".count)).trimmingCharacters(in: .whitespaces))
}

/// Every CPU set of a placement choice must lie inside `cpus`.
func assertInside(_ choice: Placement.Choice, _ cpus: CPUSet, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssert(choice.progressCPUs.isSubset(of: cpus), "progress CPUs \(choice.progressCPUs) outside \(cpus)", file: file, line: line)
    for w in choice.workerCPUs {
        XCTAssert(w.isSubset(of: cpus), "worker CPUs \(w) outside \(cpus)", file: file, line: line)
    }
}
