import HFRKernels

/// Which buffer a schedule step addresses. Schedules are built over these names, not pointers,
/// so that they are pure values that tests can inspect and that can be cached and reused.
public enum BufferName: UInt8, Sendable, CaseIterable {
    case send, recv, scratch
}

/// A byte offset in one of a collective's buffers.
public struct BufferRef: Equatable, Sendable {
    public var buffer: BufferName
    public var offset: Int
    public init(_ buffer: BufferName, _ offset: Int) { self.buffer = buffer; self.offset = offset }
}

/// What one step of a schedule does.
public enum StepKind: UInt8, Sendable {
    /// Send `bytes` from `a` to `peer`, as message number `index` of this collective to that peer.
    case send
    /// Receive `bytes` from `peer` into `dst`, as message number `index` from that peer. The
    /// receiver names the destination: it is advertised to the sender before the data moves.
    case recv
    /// `dst = op(a, b)` over `count` elements (dst may be a).
    case combine
    /// Copy `bytes` from `a` to `dst`.
    case copy
    /// Divide `count` elements at `dst` by the number of ranks (the end of an `avg`).
    case scale
}

/// One step of a collective: a message or a local computation, with the steps it waits for.
public struct Step: Sendable {
    public var kind: StepKind
    public var peer: Int32 = -1
    /// For send and recv: the message's number among this collective's messages to/from `peer`.
    public var index: Int32 = 0
    public var dst = BufferRef(.recv, 0)
    public var a = BufferRef(.send, 0)
    public var b = BufferRef(.scratch, 0)
    /// Bytes for send, recv and copy; elements for combine and scale.
    public var length: Int = 0
}

/// A collective as a dependency graph of steps. Both sides of every message number it the same
/// way: the k-th send to a peer is matched by that peer's k-th receive from this rank.
public struct Schedule: Sendable {
    public var steps: [Step] = []
    /// Dependents of step i are `successors[successorStart[i] ..< successorStart[i+1]]`.
    public var successorStart: [Int32] = [0]
    public var successors: [Int32] = []
    /// How many steps each step waits for.
    public var predecessorCount: [Int32] = []
    /// Bytes of scratch memory the schedule addresses.
    public var scratchBytes: Int = 0
    /// A hash of the arguments every rank must agree on; carried by every frame of the collective.
    public var signature: UInt32 = 0
    /// Per peer, how many messages this rank sends to and receives from it.
    public var sendCount: [Int32]
    public var recvCount: [Int32]
    /// Step numbers of the k-th receive from and send to each peer, `recvSteps[recvStart[p] + k]`,
    /// and the messages exchanged with each peer (both filled by `ScheduleBuilder.finish`): the
    /// engine finds the step a frame belongs to with them, without building tables per call.
    public var recvStart: [Int] = [], sendStart: [Int] = []
    public var recvSteps: [Int32] = [], sendSteps: [Int32] = []
    public var messagesPerPeer: [Int32] = []

    public init(ranks: Int) {
        sendCount = Array(repeating: 0, count: ranks)
        recvCount = Array(repeating: 0, count: ranks)
    }

    /// The step of the `index`-th message this rank receives from `peer`, or nil when there is
    /// no such message (any `peer` and `index`: they may come from the wire).
    @inline(__always) public func recvStep(from peer: Int, index: Int32) -> Int? {
        let k = Int(index)
        guard peer >= 0, peer + 1 < recvStart.count, k >= 0, k < recvStart[peer + 1] - recvStart[peer] else { return nil }
        return Int(recvSteps[recvStart[peer] + k])
    }

    /// The step of the `index`-th message this rank sends to `peer`, or nil.
    @inline(__always) public func sendStep(to peer: Int, index: Int32) -> Int? {
        let k = Int(index)
        guard peer >= 0, peer + 1 < sendStart.count, k >= 0, k < sendStart[peer + 1] - sendStart[peer] else { return nil }
        return Int(sendSteps[sendStart[peer] + k])
    }

    /// The peers this schedule exchanges messages with (filled by `ScheduleBuilder.finish`).
    public var peers: [Int] = []
    /// Bytes of its non-empty messages over their number, both directions (0 without any):
    /// whether waiting for them is worth a sleep (see `EngineConfiguration.sleepMessageBytes`).
    public var averageMessageBytes = 0
    /// Per buffer (indexed by `BufferName.rawValue`), the byte range its messages cover: what
    /// sends read from it and receives write into it (empty without any; filled by
    /// `ScheduleBuilder.finish`). An RDMA rank registers this range of a caller's buffer once
    /// per collective.
    public var messageExtents: [Range<Int>] = []
}

/// A finished schedule shared by reference. The schedule cache and every collective that runs
/// the schedule hold the same instance, so submitting a cached schedule costs one retain, where
/// copying the `Schedule` value would retain each of its arrays.
public final class SharedSchedule: Sendable {
    public let schedule: Schedule
    public init(_ schedule: Schedule) { self.schedule = schedule }
}

/// A 32-bit hash (FNV-1a) of the arguments of a collective that every rank must pass alike.
public func collectiveSignature(_ fields: [Int]) -> UInt32 {
    var h: UInt32 = 0x811C_9DC5
    for f in fields {
        var v = UInt64(bitPattern: Int64(f))
        for _ in 0..<8 { h = (h ^ UInt32(v & 0xFF)) &* 0x0100_0193; v >>= 8 }
    }
    return h
}

/// Builds a `Schedule` step by step; message numbers are assigned in call order per peer.
public struct ScheduleBuilder {
    public typealias StepID = Int32
    private var schedule: Schedule
    private var edges: [[Int32]] = []

    public init(ranks: Int) { schedule = Schedule(ranks: ranks) }

    @discardableResult
    private mutating func add(_ step: Step, after deps: [StepID?]) -> StepID {
        let id = StepID(schedule.steps.count)
        schedule.steps.append(step)
        edges.append([])
        var count: Int32 = 0
        for d in deps {
            guard let d else { continue }
            if edges[Int(d)].last != id { edges[Int(d)].append(id); count += 1 }
        }
        schedule.predecessorCount.append(count)
        return id
    }

    @discardableResult
    public mutating func send(to peer: Int, from a: BufferRef, bytes: Int, after deps: [StepID?] = []) -> StepID {
        var s = Step(kind: .send)
        s.peer = Int32(peer); s.a = a; s.length = bytes
        s.index = schedule.sendCount[peer]
        schedule.sendCount[peer] += 1
        return add(s, after: deps)
    }

    @discardableResult
    public mutating func recv(from peer: Int, into dst: BufferRef, bytes: Int, after deps: [StepID?] = []) -> StepID {
        var s = Step(kind: .recv)
        s.peer = Int32(peer); s.dst = dst; s.length = bytes
        s.index = schedule.recvCount[peer]
        schedule.recvCount[peer] += 1
        return add(s, after: deps)
    }

    @discardableResult
    public mutating func combine(_ dst: BufferRef, _ a: BufferRef, _ b: BufferRef, count: Int, after deps: [StepID?]) -> StepID {
        var s = Step(kind: .combine)
        s.dst = dst; s.a = a; s.b = b; s.length = count
        return add(s, after: deps)
    }

    @discardableResult
    public mutating func copy(_ dst: BufferRef, from a: BufferRef, bytes: Int, after deps: [StepID?] = []) -> StepID {
        var s = Step(kind: .copy)
        s.dst = dst; s.a = a; s.length = bytes
        return add(s, after: deps)
    }

    @discardableResult
    public mutating func scale(_ dst: BufferRef, count: Int, after deps: [StepID?]) -> StepID {
        var s = Step(kind: .scale)
        s.dst = dst; s.length = count
        return add(s, after: deps)
    }

    public mutating func reserveScratch(_ bytes: Int) -> Int {
        let at = schedule.scratchBytes
        schedule.scratchBytes += bytes
        return at
    }

    public func finish() -> Schedule {
        var s = schedule
        s.successorStart = [0]
        s.successorStart.reserveCapacity(edges.count + 1)
        for e in edges {
            s.successors.append(contentsOf: e)
            s.successorStart.append(Int32(s.successors.count))
        }
        let ranks = s.sendCount.count
        var rs = [Int](repeating: 0, count: ranks + 1), ss = rs
        for p in 0..<ranks {
            rs[p + 1] = rs[p] + Int(s.recvCount[p])
            ss[p + 1] = ss[p] + Int(s.sendCount[p])
        }
        var rsteps = [Int32](repeating: -1, count: rs[ranks]), ssteps = [Int32](repeating: -1, count: ss[ranks])
        for (i, step) in s.steps.enumerated() {
            if step.kind == .recv { rsteps[rs[Int(step.peer)] + Int(step.index)] = Int32(i) }
            if step.kind == .send { ssteps[ss[Int(step.peer)] + Int(step.index)] = Int32(i) }
        }
        s.recvStart = rs; s.sendStart = ss; s.recvSteps = rsteps; s.sendSteps = ssteps
        s.messagesPerPeer = (0..<ranks).map { s.sendCount[$0] + s.recvCount[$0] }
        s.peers = (0..<ranks).filter { s.messagesPerPeer[$0] > 0 }
        var bytes = 0, messages = 0
        for step in s.steps where (step.kind == .send || step.kind == .recv) && step.length > 0 {
            bytes += step.length
            messages += 1
        }
        s.averageMessageBytes = messages > 0 ? bytes / messages : 0
        let names = BufferName.allCases.count
        var lows = [Int](repeating: .max, count: names), highs = [Int](repeating: 0, count: names)
        for step in s.steps where step.length > 0 && (step.kind == .send || step.kind == .recv) {
            let ref = step.kind == .send ? step.a : step.dst
            let b = Int(ref.buffer.rawValue)
            lows[b] = Swift.min(lows[b], ref.offset)
            highs[b] = Swift.max(highs[b], ref.offset + step.length)
        }
        s.messageExtents = (0..<names).map { lows[$0] < highs[$0] ? lows[$0]..<highs[$0] : 0..<0 }
        return s
    }
}
