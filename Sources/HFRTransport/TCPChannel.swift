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
    /// A control frame (clear-to-send, abort) arrived.
    func channel(_ channel: TCPChannel, control header: FrameHeader) throws
    /// A data frame queued with `cookie` has been handed to the kernel in full.
    func channel(_ channel: TCPChannel, sent cookie: UInt64, bytes: Int)
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
public final class TCPChannel {
    public let fd: Int32
    public let peer: Int
    public let link: Int
    public let index: Int
    public unowned(unsafe) var delegate: ChannelDelegate
    /// The largest data payload a frame may announce (the fragment size limit).
    public let maxPayload: Int

    // Send side: data frames in a ring; control frames in a small ring that jumps the queue at frame boundaries.
    private struct Outgoing {
        var header: FrameHeader
        var payload: UnsafeRawPointer?
        var cookie: UInt64
    }
    private let capacity: Int
    private var ring: UnsafeMutablePointer<Outgoing>
    private var head = 0, count = 0
    private var control: [FrameHeader] = []
    private var controlHead = 0
    private var current: Outgoing?
    private var currentIsData = false
    private var sentOfCurrent = 0
    private let headerOut = UnsafeMutableRawPointer.allocate(byteCount: FrameHeader.size, alignment: 8)
    /// Payload bytes queued and not yet handed to the kernel.
    public private(set) var queuedBytes = 0
    /// Whether the channel waits for EPOLLOUT (the kernel buffer was full).
    public private(set) var wantsWritable = false

    // Receive side.
    private let headerIn = UnsafeMutableRawPointer.allocate(byteCount: FrameHeader.size, alignment: 8)
    private var headerFilled = 0
    private var rxHeader = FrameHeader(kind: .data, sequence: 0, index: 0, offset: 0, length: 0)
    private var rxTarget: UnsafeMutableRawPointer?
    private var rxRemaining = 0
    private var rxCookie: UInt64 = 0

    /// Counters for diagnostics.
    public private(set) var bytesSent = 0, bytesReceived = 0, framesSent = 0, framesReceived = 0

    public init(fd: Int32, peer: Int, link: Int, index: Int, delegate: ChannelDelegate, maxPayload: Int, queueCapacity: Int = 1024) {
        self.fd = fd; self.peer = peer; self.link = link; self.index = index
        self.delegate = delegate; self.maxPayload = maxPayload
        capacity = queueCapacity
        ring = .allocate(capacity: queueCapacity)
        control.reserveCapacity(256)
    }

    deinit {
        ring.deinitialize(count: 0)
        ring.deallocate()
        headerOut.deallocate(); headerIn.deallocate()
        close(fd)
    }

    /// Whether another data frame fits in the queue.
    @inline(__always) public var hasRoom: Bool { count < capacity }
    @inline(__always) public var isIdle: Bool { current == nil && count == 0 && controlHead == control.count }

    /// Queues a data frame; returns false when the ring is full.
    @inline(__always)
    public func enqueue(data header: FrameHeader, payload: UnsafeRawPointer, cookie: UInt64) -> Bool {
        if count == capacity { return false }
        (ring + ((head + count) % capacity)).initialize(to: Outgoing(header: header, payload: payload, cookie: cookie))
        count += 1
        queuedBytes += Int(header.length)
        return true
    }

    /// Queues a control frame (no payload); it goes out before any data frame not yet started.
    @inline(__always)
    public func enqueue(control header: FrameHeader) {
        if controlHead > 0 && controlHead == control.count { control.removeAll(keepingCapacity: true); controlHead = 0 }
        control.append(header)
    }

    /// Writes queued frames until the queue is empty or the kernel buffer is full.
    /// Returns true when everything queued has been written.
    public func flush() throws(ChannelError) -> Bool {
        while true {
            if current == nil {
                if controlHead < control.count {
                    current = Outgoing(header: control[controlHead], payload: nil, cookie: 0)
                    controlHead += 1
                    currentIsData = false
                } else if count > 0 {
                    current = ring[head]
                    currentIsData = true
                } else {
                    wantsWritable = false
                    return true
                }
                current!.header.encode(to: headerOut)
                sentOfCurrent = 0
            }
            let frame = current!
            let total = FrameHeader.size + Int(frame.header.length)
            let hdrLeft = max(0, FrameHeader.size - sentOfCurrent)
            let payloadDone = max(0, sentOfCurrent - FrameHeader.size)
            let n = hfr_send2(fd, headerOut + (FrameHeader.size - hdrLeft), hdrLeft,
                              frame.payload.map { $0 + payloadDone }, Int(frame.header.length) - payloadDone)
            if n < 0 {
                let e = Errno.current
                if e == .again { wantsWritable = true; return false }
                if e == .interrupted { continue }
                throw .system(SystemCallError("sendmsg to rank \(peer)", e))
            }
            sentOfCurrent += n
            bytesSent += n
            if sentOfCurrent == total {
                framesSent += 1
                current = nil
                if currentIsData {
                    head = (head + 1) % capacity
                    count -= 1
                    queuedBytes -= Int(frame.header.length)
                    delegate.channel(self, sent: frame.cookie, bytes: Int(frame.header.length))
                }
            }
        }
    }

    /// Reads frames until the socket has no more data (or `budget` bytes were read, for fairness).
    public func readable(budget: Int = 8 << 20) throws(ChannelError) {
        var read = 0
        while read < budget {
            if rxTarget == nil {
                let n = hfr_recv(fd, headerIn + headerFilled, FrameHeader.size - headerFilled)
                if n == 0 { throw .closedByPeer }
                if n < 0 {
                    let e = Errno.current
                    if e == .again { return }
                    if e == .interrupted { continue }
                    throw .system(SystemCallError("recv from rank \(peer)", e))
                }
                read += n
                bytesReceived += n
                headerFilled += n
                if headerFilled < FrameHeader.size { continue }
                headerFilled = 0
                let header: FrameHeader
                do { header = try FrameHeader.decode(UnsafeRawBufferPointer(start: headerIn, count: FrameHeader.size), maxPayload: maxPayload) }
                catch { throw .protocolViolation("\(error)") }
                framesReceived += 1
                if header.kind == .data {
                    do {
                        let (target, cookie) = try delegate.channel(self, dataHeader: header)
                        rxHeader = header
                        if header.length == 0 {
                            delegate.channel(self, receivedPayloadOf: cookie, header: header)
                        } else {
                            rxTarget = target; rxRemaining = Int(header.length); rxCookie = cookie
                        }
                    } catch let e as ChannelError { throw e } catch { throw .protocolViolation("\(error)") }
                } else {
                    do { try delegate.channel(self, control: header) }
                    catch let e as ChannelError { throw e } catch { throw .protocolViolation("\(error)") }
                }
            } else {
                let n = hfr_recv(fd, rxTarget!, rxRemaining)
                if n == 0 { throw .closedByPeer }
                if n < 0 {
                    let e = Errno.current
                    if e == .again { return }
                    if e == .interrupted { continue }
                    throw .system(SystemCallError("recv from rank \(peer)", e))
                }
                read += n
                bytesReceived += n
                rxRemaining -= n
                if rxRemaining == 0 {
                    rxTarget = nil
                    delegate.channel(self, receivedPayloadOf: rxCookie, header: rxHeader)
                } else {
                    rxTarget! += n
                }
            }
        }
    }

    /// Drops every queued frame (after a failure); returns the cookies of unsent data frames.
    public func drainQueue() -> [UInt64] {
        var cookies: [UInt64] = []
        if let c = current, currentIsData { cookies.append(c.cookie); head = (head + 1) % capacity; count -= 1 }
        current = nil
        while count > 0 { cookies.append(ring[head].cookie); head = (head + 1) % capacity; count -= 1 }
        control.removeAll(); controlHead = 0
        queuedBytes = 0
        return cookies
    }
}
