import Foundation
import XCTest

/// C programs built against an installed prefix with `cc prog.c $(pkg-config --cflags --libs hfreduce)`
/// and run under hfrun. scripts/test.sh installs into a temporary prefix and sets HFR_TEST_PREFIX.
final class CAPITests: XCTestCase {
    var prefix: String!
    var scratch: URL!

    override func setUpWithError() throws {
        guard let p = ProcessInfo.processInfo.environment["HFR_TEST_PREFIX"] else {
            throw XCTSkip("skipped: HFR_TEST_PREFIX is not set (scripts/test.sh installs HFReduce into a temporary prefix and sets it)")
        }
        prefix = p
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hfr-capi-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
    }

    /// Compiles a C file with the flags pkg-config gives for the installed prefix.
    func compile(_ source: String, _ name: String) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let out = scratch.appendingPathComponent(name).path
        let sh = Process()
        sh.executableURL = URL(fileURLWithPath: "/bin/sh")
        sh.arguments = ["-c", "cc -std=c99 -Wall -Werror \(root.appendingPathComponent(source).path) $(pkg-config --cflags --libs hfreduce) -o \(out)"]
        sh.environment = ProcessInfo.processInfo.environment.merging(["PKG_CONFIG_PATH": "\(prefix!)/lib/pkgconfig"]) { $1 }
        let pipe = Pipe()
        sh.standardError = pipe
        sh.standardOutput = pipe
        try sh.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sh.waitUntilExit()
        XCTAssertEqual(sh.terminationStatus, 0, "compiling \(source) failed:\n\(text)")
        return out
    }

    func run(_ program: String, ranks: Int, _ args: [String] = []) throws -> JobRunner.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "\(prefix!)/bin/hfrun")
        p.arguments = ["-n", "\(ranks)", "--timeout", "120", "--", program] + args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return JobRunner.Result(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self), seconds: 0)
    }

    /// Unique id through a file, hfrCommInitRank, collectives, and every kind of bad argument.
    func testProgramFromTheHeaderAloneWithBadArguments() throws {
        let exe = try compile("Tests/c/api_check.c", "api_check")
        let r = try run(exe, ranks: 3, [scratch.appendingPathComponent("id").path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "api_check OK").count - 1, 3, r.output)
    }

    /// The shipped example: blocking and asynchronous float32 and bfloat16 allreduce, checked.
    func testShippedExample() throws {
        let exe = try compile("Examples/c/allreduce.c", "allreduce")
        for n in [1, 3, 4] {
            let r = try run(exe, ranks: n)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(r.output.components(separatedBy: ": 0 wrong values").count - 1, n, r.output)
        }
    }

    /// Every collective of the family through the C API, and its bad arguments.
    func testCollectiveFamilyFromC() throws {
        let exe = try compile("Tests/c/family_check.c", "family_check")
        for n in [1, 2, 3, 5] {
            let r = try run(exe, ranks: n)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertEqual(r.output.components(separatedBy: "family_check OK").count - 1, n, r.output)
        }
    }

    /// libhfreduce.so exports the functions of the header and nothing else, and needs no Swift runtime.
    func testLibraryExportsExactlyTheHeader() throws {
        let lib = "\(prefix!)/lib/libhfreduce.so"
        func sh(_ command: String) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run()
            let s = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return s
        }
        let exported = Set(try sh("nm -D --defined-only --extern-only \(lib) | awk '{print $3}'").split(separator: "\n").map(String.init))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let header = try String(contentsOf: root.appendingPathComponent("include/hfreduce.h"), encoding: .utf8)
        let declared = Set(header.split(separator: "\n").compactMap { line -> String? in
            guard let r = line.range(of: #"\b(hfr[A-Z][A-Za-z]*)\("#, options: .regularExpression) else { return nil }
            return String(line[r].dropLast())
        })
        XCTAssertEqual(exported, declared)
        XCTAssertFalse(try sh("ldd \(lib)").contains("swift"), "libhfreduce.so depends on the Swift runtime")
    }
}
