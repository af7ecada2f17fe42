import Glibc
import CHFRShims
import HFRSystem

/// What a `TCPChannel` reports to the engine that drives it. Called on the progress thread only.
public protocol ChannelDelegate: AnyObject {
    /// A data frame's header arrived: return where its `header.length` payload bytes go (straight
    /// into the destination buffer) and a cookie handed back with `channelReceivedPayload`.
    /// Throw (with a sentence) to reject the frame; the channel then fails.
    func channel(_ channel: TCPChannel, dataHeader header: FrameHeader) throws -> (UnsafeMutableRawPointer, UInt64)
    /// The payload announced by the last data header has fully arrived.
    func channel(_ channel: TCPChannel, receivedPayloadOf cookie: UInt64, header: FrameHeader)
    /// A control frame (clear-to-send, abort, link down) arrived.
    func channel(_ channel: TCPChannel, control header: FrameHeader) throws
    /// A clear-to-write arrived: the receiver advertises where an RDMA message lands.
    func channel(_ channel: TCPChannel, clearToWrite header: FrameHeader, target: WriteTarget) throws
    /// A data frame queued with `cookie` is done with: handed to the kernel in full, or, on a
    /// reliable channel, acknowledged by the receiver.
    func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int)
}

extension ChannelDelegate {
    /// A delegate without RDMA links refuses clear-to-write frames.
    public func channel(_ channel: TCPChannel, clearToWrite header: FrameHeader, target: WriteTarget) throws {
        throw ChannelError.protocolViolation("clear-to-write from rank \(channel.peer) on a connection without RDMA")
    }
}

/// A frame taken back from a channel that went down, to be sent again on another one.
public struct PendingFrame {
    public var header: FrameHeader
    public var payload: UnsafeRawPointer?
    public var cookie: UInt64
    /// The extension of a clear-to-write.
    public var target: WriteTarget?
}

/// Why a channel stopped.
public enum ChannelError: Error, CustomStringConvertible {
    case closedByPeer
    case system(SystemCallError)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .closedByPeer: return "connection closed by peer"
        case let .system(e): return "\(e)"
        case let .protocolViolation(s): return "protocol violation: \(s)"
        }
    }
}

/// One non-blocking TCP socket to a peer, carrying frames both ways. A peer connection holds
/// several of these per link (`HFR_NSOCKS`). Frames are queued in a fixed ring (no allocation
/// on the data path); header and payload go out in one `sendmsg`; payload comes in with `recv`
/// straight into the destination the delegate names.
///
/// A *reliable* channel (a peer reached over several links) keeps every counted frame it wrote
/// (data, clear-to-send, abort) until the receiver acknowledges it: the receiver counts the frames
/// it has taken and sends the count back in `ack` frames. When the channel goes down, the frames
/// after the receiver's final count are taken back (`takeBack`) and sent on another channel, so
/// nothing is lost and nothing arrives twice.
public final class TCPChannel {
    public let fd: Int32
    public let peer: Int
    public let link: Int
    public let index: Int
    /// Keeps written frames until acknowledged (see above).
    public let reliable: Bool
    public unowned(unsafe) var delegate: ChannelDelegate
    /// The largest data payload a frame may announce (the fragment size limit).
    public let maxPayload: Int

    // Send side: data frames in a ring, each with its header encoded at enqueue time; control
    // frames as encoded bytes that go out at the next frame boundary, ahead of data frames not
    // yet started. One sendmsg carries as many frames as fit in `maxIovecs`.
    private struct Outgoing {
        var length: Int
        var payload: UnsafeRawPointer?
        var cookie: UInt64
        var header: FrameHeader
        var target: WriteTarget? = nil
    }
    private let capacity: Int
    private var ring: UnsafeMutablePointer<Outgoing>
    private let headers: UnsafeMutableRawPointer
    private var head = 0, count = 0
    /// Bytes of the head data frame already sent (0 when it has not started).
    private var headSent = 0
    private var control: UnsafeMutableRawPointer
    private var controlCapacity = 64 * FrameHeader.size
    private var controlEnd = 0, controlSent = 0
    /// Where the first control frame not completely written starts (frames are 32 bytes, or 64
    /// with a clear-to-write's extension).
    private var controlFrameStart = 0
    /// Where the last control frame queued starts (an ack there, not yet written, is updated in place).
    private var lastControlStart = 0
    private static let maxIovecs = 64
    private let iov = UnsafeMutablePointer<iovec>.allocate(capacity: TCPChannel.maxIovecs)
    /// Payload bytes queued and not yet handed to the kernel.
    public private(set) var queuedBytes = 0
    /// Data frames (and their payload bytes) queued or written and not yet done with: on a
    /// reliable channel until acknowledged, otherwise until written.
    public private(set) var framesInFlight = 0, bytesInFlight = 0

    // Reliable channels: written frames not yet acknowledged, oldest first (a growable ring; it
    // holds at most what the flow control lets into flight, so it stops growing early).
    private var log: UnsafeMutablePointer<Outgoing>
    private var logCapacity = 256, logHead = 0, logCount = 0
    /// Counted frames the receiver has acknowledged: the ordinal of the log's first entry.
    public private(set) var acknowledged: UInt64 = 0
    /// Counted frames taken from this channel, and the count last sent back in an ack.
    public private(set) var received: UInt64 = 0
    private var receivedAcked: UInt64 = 0
    /// Monotonic time of the last sign of life from the receiver (an ack that freed frames), or
    /// of the moment frames went into flight on an idle channel: the stall deadline counts from it.
    public var lastProgress: UInt64 = 0
    /// Whether the channel waits for EPOLLOUT (the kernel buffer was full).
    public private(set) var wantsWritable = false
    /// Set while `flush` runs (see there).
    private var flushing = false

    // Receive side.
    /// The staging buffer for bytes read ahead between frames (headers, small payloads and the
    /// start of large ones): room for a whole eager-sized message and the frames around it.
    static let stageBytes = (64 << 10) + 4096
    /// How far to read ahead: all of the stage after small data frames, so that a message of up
    /// to 64 KiB with its neighbours costs one `recv` (copying it out of the stage is cheaper than
    /// a system call); 8 KiB after large ones, whose payload goes straight into place.
    private var readAhead = TCPChannel.largeReadAhead
    private static let largeReadAhead = 8192
    private static let smallPayload = 64 << 10
    private let stage = UnsafeMutableRawPointer.allocate(byteCount: TCPChannel.stageBytes, alignment: 64)
    private var stageStart = 0, stageEnd = 0
    private var rxHeader = FrameHeader(kind: .data, sequence: 0, index: 0, offset: 0, length: 0)
    private var rxTarget: UnsafeMutableRawPointer?
    private var rxRemaining = 0
    private var rxCookie: UInt64 = 0
    /// Payload copies made by `detachPayloads`.
    private var detached: [UnsafeMutableRawPointer] = []

    /// Counters for diagnostics.
    public private(set) var bytesSent = 0, bytesReceived = 0, framesSent = 0, framesReceived = 0

    public init(fd: Int32, peer: Int, link: Int, index: Int, delegate: ChannelDelegate, maxPayload: Int,
                reliable: Bool = false, queueCapacity: Int = 1024) {
        self.fd = fd; self.peer = peer; self.link = link; self.index = index
        self.delegate = delegate; self.maxPayload = maxPayload; self.reliable = reliable
        capacity = queueCapacity
        ring = .allocate(capacity: queueCapacity)
        headers = .allocate(byteCount: queueCapacity * FrameHeader.size, alignment: 8)
        control = .allocate(byteCount: controlCapacity, alignment: 8)
        log = .allocate(capacity: logCapacity)
    }

    deinit {
        ring.deallocate()
        log.deallocate()
        headers.deallocate(); control.deallocate(); iov.deallocate(); stage.deallocate()
        for p in detached { p.deallocate() }
        if isOpen { close(fd) }
    }

    /// Whether the socket is still open (`closeSocket` not called).
    public private(set) var isOpen = true

    /// `close(2)`s the socket of a channel that went down; its frames stay for `takeBack`.
    public func closeSocket() {
        guard isOpen else { return }
        isOpen = false
        close(fd)
    }

    /// Whether another data frame fits in the queue.
    @inline(__always) public var hasRoom: Bool { count < capacity }
    @inline(__always) public var isIdle: Bool { count == 0 && controlSent == controlEnd }

    /// Queues a data frame; returns false when the ring is full.
    @inline(__always)
    public func enqueue(data header: FrameHeader, payload: UnsafeRawPointer?, cookie: UInt64) -> Bool {
        if count == capacity { return false }
        if reliable && !hasUnfinishedFrames { lastProgress = MonotonicClock.nanoseconds() }
        let slot = (head + count) % capacity
        header.encode(to: headers + slot * FrameHeader.size)
        (ring + slot).initialize(to: Outgoing(length: Int(header.length), payload: payload, cookie: cookie, header: header))
        count += 1
        queuedBytes += Int(header.length)
        framesInFlight += 1
        bytesInFlight += Int(header.length)
        return true
    }

    /// Whether the channel holds frames the receiver has not acknowledged (reliable channels),
    /// or frames not yet written.
    public var hasUnfinishedFrames: Bool { count > 0 || logCount > 0 || controlSent < controlEnd }

    /// Queues a control frame (no payload; a clear-to-write carries its `target` extension); it
    /// goes out at the next frame boundary, before any data frame not yet started.
    public func enqueue(control header: FrameHeader, target: WriteTarget? = nil) {
        if reliable && !hasUnfinishedFrames { lastProgress = MonotonicClock.nanoseconds() }
        if controlSent == controlEnd { controlSent = 0; controlEnd = 0; controlFrameStart = 0 }
        var h = header
        h.length = target == nil ? 0 : UInt32(WriteTarget.size)
        let bytes = FrameHeader.size + Int(h.length)
        if controlEnd + bytes > controlCapacity {
            // Rare (a burst of clear-to-sends): grow; control frames are not on the fragment path.
            // Whole frames move, from the first one not completely written.
            let from = controlFrameStart
            var capacity = controlCapacity * 2
            while controlEnd - from + bytes > capacity { capacity *= 2 }
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
            bigger.copyMemory(from: control + from, byteCount: controlEnd - from)
            control.deallocate()
            control = bigger
            controlEnd -= from
            controlSent -= from
            controlFrameStart = 0
            controlCapacity = capacity
        }
        h.encode(to: control + controlEnd)
        if let target { target.encode(to: control + controlEnd + FrameHeader.size) }
        lastControlStart = controlEnd
        controlEnd += bytes
    }

    /// Bytes of the control frame encoded at `offset` of the control buffer (header and extension).
    @inline(__always) private func controlFrameSize(at offset: Int) -> Int {
        FrameHeader.size + Int(UInt32(littleEndian: (control + offset).loadUnaligned(fromByteOffset: 24, as: UInt32.self)))
    }

    /// The control frame encoded at `offset` of the control buffer, with its extension.
    private func controlFrame(at offset: Int) -> (FrameHeader, WriteTarget?)? {
        guard let h = try? FrameHeader.decode(UnsafeRawBufferPointer(start: control + offset, count: FrameHeader.size), maxPayload: 0) else { return nil }
        guard h.kind == .clearToWrite else { return (h, nil) }
        guard let t = try? WriteTarget.decode(UnsafeRawBufferPointer(start: control + offset + FrameHeader.size, count: WriteTarget.size)) else { return nil }
        return (h, t)
    }

    /// Writes queued frames, several per `sendmsg`, until the queue is empty or the kernel
    /// buffer is full. Returns true when everything queued has been written.
    public func flush() throws(ChannelError) -> Bool {
        // Completing a frame calls the delegate, which may fail the communicator and flush its
        // abort frames on this very channel: the outer flush's accounting is not done yet, so
        // the inner one leaves the bytes to it (and to the writability it asks for).
        if flushing { return false }
        flushing = true
        defer { flushing = false }
        while true {
            // The order on the wire: the rest of a data frame already started, then control
            // frames, then data frames.
            var n = 0
            var k = 0  // data frames covered
            func add(_ base: UnsafeRawPointer, _ len: Int) {
                if len > 0 { iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: len); n += 1 }
            }
            if headSent > 0 {
                addFrame(0, skip: headSent, add)
                k = 1
            }
            if controlSent < controlEnd && n < TCPChannel.maxIovecs { add(control + controlSent, controlEnd - controlSent) }
            while k < count && n + 2 <= TCPChannel.maxIovecs {
                addFrame(k, skip: 0, add)
                k += 1
            }
            if n == 0 {
                wantsWritable = false
                return true
            }
            let written = hfr_sendv(fd, iov, Int32(n))
            if written < 0 {
                let e = Errno.current
                if e == .again { wantsWritable = true; return false }
                if e == .interrupted { continue }
                throw .system(SystemCallError("sendmsg to rank \(peer)", e))
            }
            bytesSent += written
            // Bytes leaving count as a sign of life too: a fragment larger than a link delivers
            // in HFR_LINK_TIMEOUT is not a stall while the kernel keeps taking it.
            if reliable { lastProgress = MonotonicClock.nanoseconds() }
            consume(written)
        }
    }

    /// Adds the iovecs of the data frame `k` places after the head, minus its first `skip` bytes.
    @inline(__always)
    private func addFrame(_ k: Int, skip: Int, _ add: (UnsafeRawPointer, Int) -> Void) {
        let slot = (head + k) % capacity
        let f = ring[slot]
        if skip < FrameHeader.size { add(headers + slot * FrameHeader.size + skip, FrameHeader.size - skip) }
        let payloadDone = max(0, skip - FrameHeader.size)
        if let p = f.payload { add(p + payloadDone, f.length - payloadDone) }
    }

    /// Accounts for `bytes` written, in wire order, completing the frames they finish.
    private func consume(_ bytes: Int) {
        var left = bytes
        if headSent > 0 {
            let rest = FrameHeader.size + ring[head].length - headSent
            if left < rest { headSent += left; return }
            left -= rest
            completeHead()
        }
        let pending = controlEnd - controlSent
        if pending > 0 {
            let c = min(left, pending)
            controlSent += c
            // The control frames this write completed, in wire order (kept on a reliable channel).
            while controlFrameStart < controlSent {
                let size = controlFrameSize(at: controlFrameStart)
                if controlFrameStart + size > controlSent { break }
                if reliable { logControl(at: controlFrameStart) }
                controlFrameStart += size
            }
            left -= c
            if controlSent == controlEnd { controlSent = 0; controlEnd = 0; controlFrameStart = 0 }
            if left == 0 { return }
        }
        while left > 0 && count > 0 {
            let total = FrameHeader.size + ring[head].length
            if left < total { headSent = left; return }
            left -= total
            completeHead()
        }
    }

    @inline(__always)
    private func completeHead() {
        let f = ring[head]
        head = (head + 1) % capacity
        count -= 1
        headSent = 0
        queuedBytes -= f.length
        framesSent += 1
        if reliable {
            appendLog(f)
        } else {
            framesInFlight -= 1
            bytesInFlight -= f.length
            delegate.channel(self, sent: f.cookie, bytes: f.length)
        }
    }

    private func appendLog(_ f: Outgoing) {
        if logCount == logCapacity {
            let bigger = UnsafeMutablePointer<Outgoing>.allocate(capacity: logCapacity * 2)
            for k in 0..<logCount { (bigger + k).initialize(to: log[(logHead + k) % logCapacity]) }
            log.deallocate()
            log = bigger
            logHead = 0
            logCapacity *= 2
        }
        (log + (logHead + logCount) % logCapacity).initialize(to: f)
        logCount += 1
    }

    /// Logs the control frame encoded at `offset` of the control buffer, unless it is an ack or
    /// a link-down notice (those are not counted: they repeat state, not news).
    private func logControl(at offset: Int) {
        guard let (h, target) = controlFrame(at: offset), FrameHeader.isCounted(h.kind) else { return }
        appendLog(Outgoing(length: 0, payload: nil, cookie: 0, header: h, target: target))
    }

    /// The receiver has taken the first `count` counted frames: forget them, and report the data
    /// frames among them as done.
    private func acknowledge(_ count: UInt64) throws(ChannelError) {
        guard count >= acknowledged, count - acknowledged <= UInt64(logCount) else {
            throw .protocolViolation("rank \(peer) acknowledges \(count) frames on socket \(link).\(index); \(acknowledged) were acknowledged and \(logCount) more written")
        }
        if count > acknowledged { lastProgress = MonotonicClock.nanoseconds() }
        while acknowledged < count {
            let f = log[logHead]
            logHead = (logHead + 1) % logCapacity
            logCount -= 1
            acknowledged += 1
            if f.header.kind == .data {
                framesInFlight -= 1
                bytesInFlight -= f.length
                delegate.channel(self, sent: f.cookie, bytes: f.length)
            }
        }
    }

    /// Takes back, after the channel went down, every frame the receiver did not take: those
    /// after its final count `peerReceived` (which acknowledges the ones before), and those never
    /// written. The channel is empty afterwards.
    public func takeBack(peerReceived: UInt64) throws(ChannelError) -> [PendingFrame] {
        try acknowledge(peerReceived)
        var out: [PendingFrame] = []
        while logCount > 0 {
            let f = log[logHead]
            logHead = (logHead + 1) % logCapacity
            logCount -= 1
            out.append(PendingFrame(header: f.header, payload: f.payload, cookie: f.cookie, target: f.target))
        }
        var c = controlFrameStart
        while c + FrameHeader.size <= controlEnd {
            let size = controlFrameSize(at: c)
            if c + size > controlEnd { break }
            if let (h, target) = controlFrame(at: c), FrameHeader.isCounted(h.kind) {
                out.append(PendingFrame(header: h, payload: nil, cookie: 0, target: target))
            }
            c += size
        }
        while count > 0 {
            let f = ring[head]
            head = (head + 1) % capacity
            count -= 1
            out.append(PendingFrame(header: f.header, payload: f.payload, cookie: f.cookie))
        }
        headSent = 0
        controlSent = 0; controlEnd = 0; controlFrameStart = 0
        queuedBytes = 0
        framesInFlight = 0; bytesInFlight = 0
        return out
    }

    /// Reads frames until the socket has no more data, or until `budget` bytes were read (for
    /// fairness; what was read is handled in full either way).
    ///
    /// Between frames the channel reads ahead into a staging buffer (see `readAhead`), so that a
    /// burst of control frames and small messages costs one `recv`; whatever part of a payload
    /// arrived there is copied to its destination. The rest of a large payload is received
    /// straight into place by a `recvmsg` that reads ahead into the stage behind it. A read that
    /// ends between frames or past a payload's end with less than it asked for ends the call: the
    /// socket is empty, and level-triggered epoll reports it again when more arrives (4 ranks,
    /// 64 KiB all-to-all: 3 `recv`s per message became 1). A read cut short inside a payload
    /// reads on: a large fragment is likely still streaming in.
    ///
    /// On a reliable channel the count of frames taken goes back in one `ack` per call; the
    /// return value says that the channel has something to write now.
    @discardableResult
    public func readable(budget: Int = 8 << 20) throws(ChannelError) -> Bool {
        try readFrames(budget: budget)
        if reliable && received != receivedAcked && isOpen {
            receivedAcked = received
            // An ack still waiting to be written is brought up to date instead of queueing another.
            let last = lastControlStart
            if last >= controlSent && last + FrameHeader.size == controlEnd
                && (control + last).load(fromByteOffset: 4, as: UInt8.self) == FrameKind.ack.rawValue {
                (control + last).storeBytes(of: received.littleEndian, toByteOffset: 16, as: UInt64.self)
            } else {
                enqueue(control: FrameHeader(kind: .ack, sequence: 0, index: Int32(truncatingIfNeeded: index), offset: received, length: 0))
            }
            return true
        }
        return false
    }

    /// The cookie of a payload half read when the channel stopped (its frame is not counted as
    /// taken, so the sender sends it again), or nil.
    public var partialPayloadCookie: UInt64? { rxTarget != nil ? rxCookie : nil }

    /// The header of that half-read frame, or nil.
    public var partialPayloadHeader: FrameHeader? { rxTarget != nil ? rxHeader : nil }

    /// Points the rest of the payload being received at `target`, under `cookie`: after its
    /// collective failed, its buffer may be freed by the caller at any moment, while the stream
    /// must still carry the frame to its end. `target` has room for `maxPayload` bytes.
    public func redirectPayload(to target: UnsafeMutableRawPointer, cookie: UInt64) {
        guard rxTarget != nil else { return }
        rxTarget = target
        rxCookie = cookie
    }

    /// Copies the payload of every data frame not completely written into memory the channel
    /// owns (after a failure, before it is published): the caller may free its buffers as soon
    /// as it sees the error, while the frames queued here still go out (a frame begun must be
    /// finished to keep the stream in step, and dropping the others while a write that covers
    /// them is being accounted for would lose count).
    public func detachPayloads() {
        var total = 0
        for k in 0..<count where ring[(head + k) % capacity].payload != nil { total += ring[(head + k) % capacity].length }
        guard total > 0 else { return }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 64)
        var at = 0
        for k in 0..<count {
            let slot = (head + k) % capacity
            guard let p = ring[slot].payload else { continue }
            (copy + at).copyMemory(from: p, byteCount: ring[slot].length)
            ring[slot].payload = UnsafeRawPointer(copy + at)
            at += ring[slot].length
        }
        detached.append(copy)
    }

    private func readFrames(budget: Int) throws(ChannelError) {
        var read = 0
        // A read that returns less than it asked for, between frames or past a payload's end,
        // emptied the socket: reading again would only cost a system call that fails with EAGAIN
        // (epoll reports the socket again when more comes).
        var drained = false
        // A frame handled below may take this channel down (a peer's link-down notice): stop then.
        // The budget stops only new reads: frames already staged are handled before returning,
        // since epoll reports the socket again only if the kernel still holds bytes.
        while isOpen {
            if rxTarget != nil {
                if stageStart < stageEnd {
                    let c = min(rxRemaining, stageEnd - stageStart)
                    rxTarget!.copyMemory(from: stage + stageStart, byteCount: c)
                    stageStart += c
                    payloadArrived(c)
                    continue
                }
                if drained || read >= budget { return }
                // The rest of the payload straight into place, and what follows it into the stage.
                stageStart = 0; stageEnd = 0
                let want = rxRemaining, ahead = readAhead
                let n = hfr_recv2(fd, rxTarget!, want, stage, ahead)
                if n == 0 { throw .closedByPeer }
                if n < 0 {
                    let e = Errno.current
                    if e == .again { return }
                    if e == .interrupted { continue }
                    throw .system(SystemCallError("recv from rank \(peer)", e))
                }
                read += n
                bytesReceived += n
                // A payload cut short is likely still streaming in (a large fragment the sender is
                // writing right now): read on, as a `recv` costs less than another trip through epoll.
                if n >= want && n < want + ahead { drained = true }
                if n > want { stageEnd = n - want }
                payloadArrived(min(n, want))
                continue
            }
            // A whole header is needed, and a clear-to-write's extension with it.
            var staged = stageEnd - stageStart
            if staged >= FrameHeader.size
                && (stage + stageStart).load(fromByteOffset: 4, as: UInt8.self) == FrameKind.clearToWrite.rawValue {
                staged -= WriteTarget.size
            }
            if staged < FrameHeader.size {
                if drained || read >= budget { return }
                if stageStart > 0 {
                    let left = stageEnd - stageStart
                    if left > 0 { stage.copyMemory(from: stage + stageStart, byteCount: left) }
                    stageStart = 0
                    stageEnd = left
                }
                let room = min(TCPChannel.stageBytes - stageEnd, readAhead)
                let n = hfr_recv(fd, stage + stageEnd, room)
                if n == 0 { throw .closedByPeer }
                if n < 0 {
                    let e = Errno.current
                    if e == .again { return }
                    if e == .interrupted { continue }
                    throw .system(SystemCallError("recv from rank \(peer)", e))
                }
                read += n
                bytesReceived += n
                stageEnd += n
                if n < room { drained = true }
                continue
            }
            let header: FrameHeader
            do { header = try FrameHeader.decode(UnsafeRawBufferPointer(start: stage + stageStart, count: FrameHeader.size), maxPayload: maxPayload) }
            catch { throw .protocolViolation("\(error)") }
            stageStart += FrameHeader.size
            framesReceived += 1
            if header.kind == .data {
                readAhead = Int(header.length) <= TCPChannel.smallPayload ? TCPChannel.stageBytes : TCPChannel.largeReadAhead
                do {
                    let (target, cookie) = try delegate.channel(self, dataHeader: header)
                    rxHeader = header
                    if header.length == 0 {
                        received += 1
                        delegate.channel(self, receivedPayloadOf: cookie, header: header)
                    } else {
                        rxTarget = target; rxRemaining = Int(header.length); rxCookie = cookie
                    }
                } catch let e as ChannelError { throw e } catch { throw .protocolViolation("\(error)") }
            } else if header.kind == .ack {
                guard reliable else { throw .protocolViolation("rank \(peer) acknowledges frames on a connection that does not count them") }
                try acknowledge(header.offset)
            } else if header.kind == .clearToWrite {
                let target: WriteTarget
                do { target = try WriteTarget.decode(UnsafeRawBufferPointer(start: stage + stageStart, count: WriteTarget.size)) }
                catch { throw .protocolViolation("\(error)") }
                stageStart += WriteTarget.size
                received += 1
                do { try delegate.channel(self, clearToWrite: header, target: target) }
                catch let e as ChannelError { throw e } catch { throw .protocolViolation("\(error)") }
            } else {
                if FrameHeader.isCounted(header.kind) { received += 1 }
                do { try delegate.channel(self, control: header) }
                catch let e as ChannelError { throw e } catch { throw .protocolViolation("\(error)") }
            }
        }
    }

    @inline(__always)
    private func payloadArrived(_ n: Int) {
        rxRemaining -= n
        if rxRemaining == 0 {
            rxTarget = nil
            received += 1
            delegate.channel(self, receivedPayloadOf: rxCookie, header: rxHeader)
        } else {
            rxTarget! += n
        }
    }

    /// Drops every queued frame (after a failure); returns the cookies of unsent data frames.
    public func drainQueue() -> [UInt64] {
        var cookies: [UInt64] = []
        while count > 0 { cookies.append(ring[head].cookie); head = (head + 1) % capacity; count -= 1 }
        headSent = 0
        controlSent = 0; controlEnd = 0; controlFrameStart = 0
        queuedBytes = 0
        logHead = 0; logCount = 0
        framesInFlight = 0; bytesInFlight = 0
        return cookies
    }
}
