import Glibc

/// One of hfrun's own output descriptors (stdout or stderr). Every `write` hands over whole
/// lines and writes them completely before returning, so lines of different ranks never
/// interleave. After EPIPE or another write error the sink silently discards output (hfrun
/// must keep supervising its ranks even if nobody reads its output any more).
final class OutputSink {
    let fd: Int32
    private(set) var broken = false

    init(fd: Int32) { self.fd = fd }

    func write(_ bytes: [UInt8]) {
        guard !broken, !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { p in
            guard let base = p.baseAddress else { return }
            var offset = 0
            while offset < p.count {
                let n = Glibc.write(fd, base + offset, p.count - offset)
                if n > 0 { offset += n; continue }
                if n < 0 && errno == EINTR { continue }
                if n < 0 && errno == EAGAIN {   // someone made our stdout non-blocking
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, 1000)
                    continue
                }
                broken = true
                return
            }
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
