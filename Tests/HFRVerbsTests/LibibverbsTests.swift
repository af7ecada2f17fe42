import CHFRVerbs
import Foundation
import HFRVerbs
import XCTest

/// libibverbs.so.1 on this machine: installed but without a device (no kernel RDMA), or absent.
final class LibibverbsTests: XCTestCase {
    func testLoadingTheRealLibraryFailsWithTheCauseInWords() throws {
        do {
            let library = try VerbsLibrary.loadLibibverbs()
            XCTAssertEqual(library.kind, .libibverbs)
            let names = try library.deviceNames()
            throw XCTSkip("this machine has RDMA devices (\(names)); the no-device message cannot be checked")
        } catch let e as VerbsError {
            switch e {
            case .libraryNotFound(let s):
                XCTAssertTrue(s.hasPrefix("libibverbs.so.1 not found ("), s)
            case .noDevice(let s):
                // With libibverbs but no kernel RDMA, ibv_get_device_list fails with ENOSYS.
                XCTAssertTrue(s.hasPrefix("no RDMA device: "), s)
                if !FileManager.default.fileExists(atPath: "/sys/class/infiniband") {
                    XCTAssertEqual(s, "no RDMA device: ibv_get_device_list failed: Function not implemented (this kernel has no RDMA support: no /sys/class/infiniband)")
                }
            default:
                XCTFail("unexpected: \(e)")
            }
        }
    }

    func testActivePortsSaysNoDeviceToo() throws {
        guard let library = try? VerbsLibrary.loadLibibverbs() else { throw XCTSkip("libibverbs.so.1 is not installed") }
        XCTAssertThrowsError(try library.activePorts(selection: nil, gidIndex: nil)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("no RDMA device") || text.hasPrefix("no ACTIVE port"), text)
        }
    }

    /// The soft device words completion statuses as libibverbs does.
    func testSoftStatusTextsAreLibibverbs() throws {
        guard let real = try? VerbsLibrary.loadLibibverbs() else { throw XCTSkip("libibverbs.so.1 is not installed") }
        let soft = try VerbsLibrary.loadSoft(hcas: 2)
        for raw in UInt32(0)...30 {
            XCTAssertEqual(soft.statusText(CompletionStatus(rawValue: raw)), real.statusText(CompletionStatus(rawValue: raw)), "status \(raw)")
        }
    }
}
