import Glibc

/// One of hfrun's own output descriptors (stdout or stderr). Whole lines are queued and written
/// as the descriptor takes them, so lines of different ranks never interleave, and a reader that
/// stalls (a paused pager, a full pipe) never blocks hfrun: it keeps handling signals, deadlines
/// and exits, and stops reading its ranks' pipes while `backlogLimit` bytes wait here (the
/// ranks then block on their own output, as they would writing to a stalled terminal). After
/// EPIPE or another write error the sink discards output (hfrun must keep supervising its ranks
/// even if nobody reads its output any more).
final class OutputSink {
    let fd: Int32
    private(set) var broken = false
    private var queue: [UInt8] = []
    private var head = 0
    /// Bytes waiting beyond which hfrun reads no more rank output.
    static let backlogLimit = 16 << 20

    init(fd: Int32) { self.fd = fd }

    var queuedBytes: Int { queue.count - head }

    func write(_ bytes: [UInt8]) {
        guard !broken, !bytes.isEmpty else { return }
        queue.append(contentsOf: bytes)
        pump()
    }

    /// Writes what the descriptor takes without blocking: pieces of at most PIPE_BUF bytes, each
    /// once poll says there is room for one (a blocking descriptor stays as hfrun got it: it
    /// may be shared with the shell).
    func pump() {
        while !broken && head < queue.count {
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pfd, 1, 0)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { break }
            if pfd.revents & Int16(POLLERR | POLLNVAL) != 0 { broken = true; break }
            let n = queue.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + head, min(Int(PIPE_BUF), queue.count - head)) }
            if n > 0 { head += n; continue }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            broken = true
        }
        if broken || head == queue.count {
            queue.removeAll(keepingCapacity: queue.count < 1 << 20)
            head = 0
        } else if head >= 1 << 20 {
            queue.removeFirst(head)
            head = 0
        }
    }

    /// Writes what is queued, waiting for a reader that takes nothing for at most `seconds` (at
    /// exit: a slow reader gets everything, one that never comes back loses the rest rather than
    /// keep hfrun alive).
    func flush(seconds: Double) {
        var until = monotonicNow() + seconds
        pump()
        while !broken && queuedBytes > 0 && monotonicNow() < until {
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&pfd, 1, 100)
            let before = queuedBytes
            pump()
            if queuedBytes < before { until = monotonicNow() + seconds }
        }
    }

    /// Writes one line of hfrun's own (a newline is appended).
    func line(_ text: String) {
        write(Array(text.utf8) + [0x0A])
    }
}

/// The read end of one rank's stdout or stderr pipe. Splits what arrives into lines, prefixes
/// each with `[RANK] ` and forwards complete lines to its sink; a partial line waits in
/// `pending` until its newline (or EOF, or `maxPendingBytes`) arrives.
final class LineStream {
    /// A line longer than this without a newline is forwarded in pieces of this size.
    static let maxPendingBytes = 1 << 20

    /// The pipe's read end; -1 once EOF was seen and the fd closed.
    private(set) var fd: Int32
    private let prefix: [UInt8]
    private let sink: OutputSink
    private var pending: [UInt8] = []

    init(fd: Int32, rank: Int, sink: OutputSink) {
        self.fd = fd
        self.prefix = Array("[\(rank)] ".utf8)
        self.sink = sink
    }

    var isOpen: Bool { fd >= 0 }

    /// Does one read(2) (the caller saw the fd readable) and forwards the complete lines.
    /// On EOF or a read error, forwards a final unterminated line and closes the fd.
    func readOnce(buffer: inout [UInt8]) {
        guard fd >= 0 else { return }
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
        if n <= 0 {
            finish()
            return
        }
        buffer.withUnsafeBufferPointer { consume(UnsafeBufferPointer(rebasing: $0[0..<n])) }
    }

    /// Reads whatever is already in the pipe without blocking (used right after the rank
    /// exited, so its last words are printed before hfrun's verdict about it). At most 64 reads:
    /// a descendant that left the rank's process group and keeps writing must not hold up the
    /// other ranks, signals and deadlines (the poll loop reads the rest).
    func drainAvailable(buffer: inout [UInt8]) {
        for _ in 0..<64 where fd >= 0 {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 0) > 0 else { return }
            readOnce(buffer: &buffer)
        }
    }

    /// Forwards the pending partial line (with a newline added) and closes the fd.
    func finish() {
        if !pending.isEmpty {
            sink.write(prefix + pending + [0x0A])
            pending.removeAll()
        }
        if fd >= 0 { close(fd); fd = -1 }
    }

    private func consume(_ chunk: UnsafeBufferPointer<UInt8>) {
        guard let base = chunk.baseAddress else { return }
        var out: [UInt8] = []
        out.reserveCapacity(chunk.count + 64 * prefix.count)
        var start = 0
        while start < chunk.count {
            guard let hit = memchr(base + start, 0x0A, chunk.count - start) else {
                pending.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[start...]))
                break
            }
            let end = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit)) + 1
            out.append(contentsOf: prefix)
            if !pending.isEmpty {
                out.append(contentsOf: pending)
                pending.removeAll(keepingCapacity: true)
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[start..<end]))
            start = end
        }
        if pending.count >= LineStream.maxPendingBytes {
            out.append(contentsOf: prefix)
            out.append(contentsOf: pending)
            out.append(0x0A)
            pending.removeAll(keepingCapacity: true)
        }
        sink.write(out)
    }
}
