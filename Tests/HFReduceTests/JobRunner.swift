import Foundation
import XCTest

/// Runs `hfrun` with the project's built tools, bounded in time, and captures its output.
struct JobRunner {
    struct Result {
        var status: Int32
        var output: String
        var seconds: Double
        var warnings: [Substring] { JobRunner.warnings(in: output) }
    }

    /// The library's warnings in `output`, except those about thread and memory placement,
    /// which depend on the machine the test runs on (a CPU set that forbids pinning).
    static func warnings(in output: String) -> [Substring] {
        output.split(separator: "\n").filter {
            $0.contains(" HFR WARN ") && !$0.contains("cannot pin") && !$0.contains("no thread or memory placement")
        }
    }

    /// The folder holding the built executables (the test bundle sits beside them).
    static let binDir: URL = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent()
    }()

    static func tool(_ name: String) throws -> String {
        let path = binDir.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("skipped: \(name) is not built in \(binDir.path); run `swift build --build-tests` first")
        }
        return path
    }

    /// A process (not started yet) running `path` with `arguments`, with this process's
    /// environment plus `environment`, its stdout and stderr into one pipe.
    static func process(_ path: String, _ arguments: [String], environment: [String: String] = [:]) -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        return (p, pipe)
    }

    /// `hfrun -n ranks --timeout limit [hfrunArgs] program args`, with extra environment.
    static func run(ranks: Int, limit: Int = 240, hfrunArgs: [String] = [], program: String, _ args: [String],
                    environment: [String: String] = [:]) throws -> Result {
        let (p, pipe) = process(try tool("hfrun"), ["-n", "\(ranks)", "--timeout", "\(limit)"] + hfrunArgs + ["--", try tool(program)] + args,
                                environment: environment)
        let start = Date()
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self),
                      seconds: Date().timeIntervalSince(start))
    }
}
