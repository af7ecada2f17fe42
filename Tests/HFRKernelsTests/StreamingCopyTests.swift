import XCTest
import CHFRKernels
import HFRKernels

/// The non-temporal copy of every implementation this CPU has copies exactly the bytes asked
/// for, whatever the alignment of either end and the length around the vector and unroll sizes,
/// and writes nothing past them; overlapping ranges fall back to `memmove`.
final class StreamingCopyTests: XCTestCase {
    override func tearDown() {
        _ = hfr_kernels_set_isa(-1)
        super.tearDown()
    }

    func testEveryImplementationCopiesExactly() {
        let best = hfr_kernels_set_isa(-1)
        let lengths = [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 1000, 4096, 65_537, 1 << 20]
        let room = (1 << 20) + 512
        let src = UnsafeMutableRawPointer.allocate(byteCount: room, alignment: 64)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: room, alignment: 64)
        defer { src.deallocate(); dst.deallocate() }
        for k in 0..<room { src.storeBytes(of: UInt8(truncatingIfNeeded: k &* 37 &+ k >> 8), toByteOffset: k, as: UInt8.self) }
        for isa in (0...best).reversed() {
            XCTAssertEqual(hfr_kernels_set_isa(isa), isa)
            for length in lengths {
                for (so, dof) in [(0, 0), (1, 0), (0, 1), (3, 17), (63, 33), (32, 5)] {
                    dst.initializeMemory(as: UInt8.self, repeating: 0xEE, count: room)
                    hfr_copy_streaming(dst + 64 + dof, src + so, length)
                    let d = UnsafeRawBufferPointer(start: dst, count: room), s = UnsafeRawBufferPointer(start: src, count: room)
                    let wrong = (0..<length).first { d[64 + dof + $0] != s[so + $0] }
                    XCTAssertNil(wrong, "isa \(isa), \(length) B, src +\(so), dst +\(dof): byte \(wrong ?? -1) differs")
                    let outside = (0..<room).first { ($0 < 64 + dof || $0 >= 64 + dof + length) && d[$0] != 0xEE }
                    XCTAssertNil(outside, "isa \(isa), \(length) B, src +\(so), dst +\(dof): byte \(outside ?? -1) outside the range written")
                }
            }
        }
    }

    /// Overlapping ranges are moved like `memmove`, whatever the threshold says.
    func testOverlapFallsBackToMemmove() {
        let n = 1 << 16
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 2 * n, alignment: 64)
        defer { buf.deallocate() }
        for k in 0..<(2 * n) { buf.storeBytes(of: UInt8(truncatingIfNeeded: k % 251), toByteOffset: k, as: UInt8.self) }
        StreamingCopy.copy(buf + 100, from: buf, bytes: n, threshold: 1)
        let b = UnsafeRawBufferPointer(start: buf, count: 2 * n)
        XCTAssertNil((0..<n).first { b[100 + $0] != UInt8(truncatingIfNeeded: $0 % 251) }, "forward overlap")
        for k in 0..<(2 * n) { buf.storeBytes(of: UInt8(truncatingIfNeeded: k % 251), toByteOffset: k, as: UInt8.self) }
        StreamingCopy.copy(buf, from: buf + 100, bytes: n, threshold: 1)
        XCTAssertNil((0..<n).first { b[$0] != UInt8(truncatingIfNeeded: (100 + $0) % 251) }, "backward overlap")
    }
}
