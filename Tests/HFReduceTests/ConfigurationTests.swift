import XCTest
import Glibc
import HFReduce
import HFRSystem

/// Settings out of range are refused with an error naming the variable, whether they come from
/// the environment or from a `Configuration` built in code, before anything is started.
final class ConfigurationTests: XCTestCase {
    func refusal(_ configure: (inout Configuration) -> Void) -> HFRError? {
        var c = Configuration()
        configure(&c)
        do {
            let comm = try Communicator(rank: 0, size: 1, root: SocketAddress(ip: 0x7F00_0001, port: 1), jobToken: 1, configuration: c)
            comm.destroy()
            return nil
        } catch {
            return error
        }
    }

    func testConfigurationBuiltInCodeIsChecked() {
        let cases: [(String, (inout Configuration) -> Void)] = [
            ("HFR_TIMEOUT", { $0.timeoutSeconds = -1 }),
            ("HFR_TIMEOUT", { $0.timeoutSeconds = .nan }),
            ("HFR_SPIN", { $0.spinMicroseconds = -1 }),
            ("HFR_SPIN", { $0.spinMicroseconds = 100_000_000_000_000_000 }),
            ("HFR_SLEEP_BYTES", { $0.sleepMessageBytes = -1 }),
            ("HFR_NSOCKS", { $0.socketsPerPeer = 0 }),
            ("HFR_FRAGMENT_MAX", { $0.fragmentBytes = 5000 }),
            ("HFR_SOCKET_BUFFER", { $0.socketBufferBytes = 1 << 40 }),
            ("HFR_STREAMING_COPY", { $0.streamingCopyBytes = -1 }),
            ("HFR_EAGER_CREDITS", { $0.eagerCredits = 0 }),
            ("HFR_EAGER_CREDITS", { $0.eagerCredits = 257 }),
            ("HFR_EAGER_MAX", { $0.eagerCredits = 256; $0.eagerMaxBytes = 1 << 20 }),
        ]
        for (variable, configure) in cases {
            guard let e = refusal(configure) else { XCTFail("\(variable): accepted"); continue }
            XCTAssertEqual(e.code, .invalidArgument, "\(variable): \(e)")
            XCTAssertTrue(e.message.contains(variable), "\(variable): \(e)")
        }
    }

    func testEnvironmentValuesOutOfRange() {
        let cases = [("HFR_SPIN", "100000000000000000", "HFR_SPIN"), ("HFR_FRAGMENT_MAX", "5000", "multiple of 4K"),
                     ("HFR_FRAGMENT_MIN", "5000", "HFR_FRAGMENT_MIN"), ("HFR_TIMEOUT", "nan", "HFR_TIMEOUT"),
                     ("HFR_SOCKET_INFLIGHT", "2G", "HFR_SOCKET_INFLIGHT"), ("HFR_STREAMING_COPY", "-1", "HFR_STREAMING_COPY"),
                     ("HFR_STREAMING_COPY", "lots", "HFR_STREAMING_COPY"), ("HFR_IB_REG_CACHE", "yes", "HFR_IB_REG_CACHE=yes: use 0"),
                     ("HFR_SPIN_YIELD", "2", "HFR_SPIN_YIELD=2: use 0"), ("HFR_DEBUG", "LOUD", "HFR_DEBUG=LOUD is not one of")]
        for (name, value, expected) in cases {
            setenv(name, value, 1)
            defer { unsetenv(name) }
            do {
                _ = try Configuration.fromEnvironment()
                XCTFail("\(name)=\(value): accepted")
            } catch {
                XCTAssertEqual(error.code, .invalidArgument, "\(name)=\(value)")
                XCTAssertTrue(error.message.contains(expected), "\(name)=\(value): \(error)")
            }
        }
        XCTAssertNoThrow(try Configuration.fromEnvironment(), "the defaults")
    }

    /// HFR_IB_REG_CACHE: registrations of callers' buffers released per collective unless 1.
    func testRegistrationCaching() throws {
        XCTAssertFalse(try Configuration.fromEnvironment().cacheRegistrations, "default: per collective")
        setenv("HFR_IB_REG_CACHE", "1", 1)
        defer { unsetenv("HFR_IB_REG_CACHE") }
        XCTAssertTrue(try Configuration.fromEnvironment().cacheRegistrations)
        setenv("HFR_IB_REG_CACHE", "0", 1)
        XCTAssertFalse(try Configuration.fromEnvironment().cacheRegistrations)
    }
}
