import HFReduce

/// Check data of the collectives that move data without reducing it (broadcast, allgather,
/// alltoall, sendrecv): element `j` of a block with tag `t` is `(t*K + h(j) mod K) mod L`, where
/// `h` scrambles the index (a multiplicative hash), so the values do not repeat with a short
/// period: a fragment written at the wrong offset inside its block, or twice, shows up even
/// where K is small (a K of 64 for int8 with 2 ranks repeated every 64 elements, under the
/// 4 KiB grid fragments fall on).
///
/// The tag names where the block comes from (and, for alltoall, where it goes: `p*N + r` for the
/// block rank p sends to rank r), so a block from the wrong rank shows up.
/// `K = floor(L / tags)` (at least 1) keeps the tags apart while `tags <= L`; beyond (1-byte
/// types, alltoall at 12 ranks) they wrap mod L. L is the largest integer exact in the type,
/// at most 2^24: 256 for bfloat16, 2048 for float16, and 128 for the 1-byte integers, whose
/// values therefore never equal the 0xA5 poison.
struct BlockValues {
    let type: DataType
    /// K: the values' period within a block.
    let period: Int

    init(type: DataType, tags: Int) {
        self.type = type
        let limit: Int
        switch type {
        case .bfloat16: limit = 256
        case .float16: limit = 2048
        case .int8, .uint8: limit = 128
        default: limit = 1 << 24
        }
        period = max(1, limit / max(1, tags))
        self.limit = limit
    }

    /// L: every value is below it.
    let limit: Int

    /// The value of element `j` of the block tagged `tag`.
    @inline(__always)
    func value(_ tag: Int, _ j: Int) -> Int {
        let h = Int(truncatingIfNeeded: (UInt64(j) &* 0x9E37_79B9_7F4A_7C15) >> 33)
        return (tag * period + h % period) % limit
    }

    /// The poison byte for receive buffers: NaN for floating point, 0xA5 for integers.
    var poisonByte: Int32 { type.isFloatingPoint ? 0xFF : 0xA5 }

    /// The raw bits of the integer `v` in the type.
    @inline(__always)
    func bits(_ v: Int) -> UInt64 {
        type.isFloatingPoint ? CheckValues.encodeFloat(Double(v), type) : CheckValues.encodeInteger(Int64(v), type)
    }

    /// Writes the `count` elements of the block tagged `tag` at `p`.
    func fill(_ p: UnsafeMutableRawPointer, count: Int, tag: Int) {
        switch type.size {
        case 1: fillTyped(p.assumingMemoryBound(to: UInt8.self), count, tag)
        case 2: fillTyped(p.assumingMemoryBound(to: UInt16.self), count, tag)
        case 4: fillTyped(p.assumingMemoryBound(to: UInt32.self), count, tag)
        default: fillTyped(p.assumingMemoryBound(to: UInt64.self), count, tag)
        }
    }

    /// The number of elements among `count` at `p` that differ from the block tagged `tag`.
    func wrong(_ p: UnsafeRawPointer, count: Int, tag: Int) -> Int {
        switch type.size {
        case 1: return wrongTyped(p.assumingMemoryBound(to: UInt8.self), count, tag)
        case 2: return wrongTyped(p.assumingMemoryBound(to: UInt16.self), count, tag)
        case 4: return wrongTyped(p.assumingMemoryBound(to: UInt32.self), count, tag)
        default: return wrongTyped(p.assumingMemoryBound(to: UInt64.self), count, tag)
        }
    }

    private func fillTyped<T: FixedWidthInteger>(_ p: UnsafeMutablePointer<T>, _ count: Int, _ tag: Int) {
        for i in 0..<count { p[i] = T(truncatingIfNeeded: bits(value(tag, i))) }
    }

    private func wrongTyped<T: FixedWidthInteger>(_ p: UnsafePointer<T>, _ count: Int, _ tag: Int) -> Int {
        var wrong = 0
        for i in 0..<count where p[i] != T(truncatingIfNeeded: bits(value(tag, i))) { wrong += 1 }
        return wrong
    }
}
