import Foundation
import XCTest

/// Tests/hfr-verbs-testpeer, run with pipes on stdin and stdout.
final class PeerProcess {
    static let binDir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()

    static func path(_ tool: String) throws -> String {
        let path = binDir.appendingPathComponent(tool).path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("\(tool) is not built in \(binDir.path); run `swift build --build-tests` first")
        }
        return path
    }

    let process = Process()
    let input = Pipe(), output = Pipe()

    /// Starts the peer with `environment` replacing the soft device's variables of this process.
    init(_ args: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: try Self.path("hfr-verbs-testpeer"))
        process.arguments = args
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HFR_IB_") }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func read(_ count: Int) -> [UInt8] { [UInt8](output.fileHandleForReading.readData(ofLength: count)) }
    func write(_ bytes: [UInt8]) { input.fileHandleForWriting.write(Data(bytes)) }

    /// The rest of its output, once it has exited, and its exit status.
    func finish() -> (String, Int32) {
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (text, process.terminationStatus)
    }
}
