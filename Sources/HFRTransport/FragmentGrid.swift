/// The grid data fragments over TCP fall on: every fragment of a message but its last is a
/// multiple of `grain` bytes long (`HFR_FRAGMENT_MAX` and `HFR_FRAGMENT_MIN` are multiples of it),
/// so every fragment starts on the grid. A receiver keeps one bit per grain of each message and
/// refuses a fragment that covers a grain an earlier fragment did: counted, a repeated fragment
/// would complete the message with bytes never written, or with a payload still streaming into
/// a buffer its owner already got back.
public enum FragmentGrid {
    public static let grain = 4096

    /// Words of bits needed for a message of `length` bytes.
    @inline(__always) public static func words(forMessageOf length: Int) -> Int { (length / grain + 64) / 64 }

    /// Marks the grains of fragment [offset, offset + length) of a message of `messageLength`
    /// bytes in `bits`. False, marking nothing, when the fragment is off the grid (its start, or
    /// its length unless it ends the message) or covers a marked grain. The caller has checked
    /// that the fragment lies within the message.
    @inline(__always)
    public static func claim(_ bits: UnsafeMutablePointer<UInt64>, offset: Int, length: Int, messageLength: Int) -> Bool {
        guard offset % grain == 0, length % grain == 0 || offset + length == messageLength else { return false }
        let first = offset / grain, end = (offset + length + grain - 1) / grain
        for b in first..<end where bits[b >> 6] & (1 << UInt64(b & 63)) != 0 { return false }
        for b in first..<end { bits[b >> 6] |= 1 << UInt64(b & 63) }
        return true
    }

    /// Clears what `claim` marked for a fragment whose payload was cut off when its socket went
    /// down: the sender sends the whole fragment again, on another link.
    public static func unclaim(_ bits: UnsafeMutablePointer<UInt64>, offset: Int, length: Int) {
        for b in (offset / grain)..<((offset + length + grain - 1) / grain) { bits[b >> 6] &= ~(1 << UInt64(b & 63)) }
    }
}
