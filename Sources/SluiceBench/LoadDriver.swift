import NIOCore
import NIOPosix
import SluiceWorkload

/// Monotonic nanoseconds (CLOCK_MONOTONIC, as NIO's deadlines).
func monotonicNanoseconds() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }

/// Draws key indexes from a plan's distribution.
struct KeySource {
    var generator: SplitMix64
    let upperBound: Int64
    let zipf: ZipfDistribution?

    mutating func next() -> Int {
        if let zipf { return zipf.sample(using: &generator) }
        return Int(generator.next(in: 0...upperBound))
    }
}

/// A first-in, first-out queue of timestamps that reuses its storage.
struct TimestampQueue {
    private var storage: [Int64] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }
    var first: Int64? { isEmpty ? nil : storage[head] }

    mutating func append(_ value: Int64) { storage.append(value) }

    mutating func removeFirst() -> Int64 {
        let value = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return value
    }

    mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        head = 0
    }
}

/// The connections one event loop drives, their recorder and their clock. Confined to that loop.
final class LoopDriver {
    let loop: any EventLoop
    let plan: BenchPlan
    let template: RequestTemplate
    let recorder = BenchRecorder()
    let start: Int64
    /// Nothing is sent at or after this (monotonic nanoseconds), in a run of a given duration.
    let sendingEnds: Int64
    private var slots: [LoadSlot] = []
    private var unfinished = 0
    private var ticking = false
    let finished: EventLoopPromise<Void>
    /// When the last slot finished.
    private(set) var endedAt: Int64 = 0

    init(loop: any EventLoop, plan: BenchPlan, start: Int64) {
        self.loop = loop
        self.plan = plan
        template = RequestTemplate(plan)
        self.start = start
        if case .duration(let nanoseconds) = plan.length { sendingEnds = start + nanoseconds } else { sendingEnds = .max }
        finished = loop.makePromise()
    }

    /// Opens the connections `indexes` (of all of the plan's), each sending `quotas[i]` requests (or as many as fit
    /// in the duration).
    func start(indexes: [Int], quotas: [Int], zipf: ZipfDistribution?) {
        unfinished = indexes.count
        for (index, quota) in zip(indexes, quotas) {
            let keys = KeySource(generator: SplitMix64(seed: plan.seed &+ UInt64(index) &* 0x9E37_79B9), upperBound: Int64(plan.keys - 1), zipf: zipf)
            slots.append(LoadSlot(index: index, quota: quota, keys: keys, driver: self))
        }
        guard !slots.isEmpty else {
            endedAt = monotonicNanoseconds()
            finished.succeed(())
            return
        }
        ticking = true
        scheduleTick()
        for slot in slots { slot.connect() }
    }

    /// Ticks check for timeouts every 20 ms and, in an open-loop run, send each request when it falls due: the
    /// next tick is at the earliest due time of this loop's connections (a fixed period would add up to a period
    /// of waiting to every latency, since latency counts from the due time).
    private func scheduleTick() {
        let now = monotonicNanoseconds()
        var next = now + 20_000_000
        if plan.rate != nil {
            for slot in slots { next = min(next, slot.nextDue) }
        }
        loop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(UInt64(max(next, now)))) { [self] in
            guard ticking else { return }
            let now = monotonicNanoseconds()
            for slot in slots { slot.tick(now: now) }
            if ticking { scheduleTick() }
        }
    }

    func slotFinished() {
        unfinished -= 1
        if unfinished == 0 {
            endedAt = monotonicNanoseconds()
            ticking = false
            finished.succeed(())
        }
    }

    /// Stops every connection at once (the run was interrupted).
    func stopAll() {
        for slot in slots { slot.stop() }
    }
}

/// One of the plan's connections, across reconnections: its quota, its keys, its requests in flight.
final class LoadSlot {
    let index: Int
    unowned let driver: LoopDriver
    private var remaining: Int
    private var keys: KeySource
    private var channel: (any Channel)?
    private var connecting = false
    private var done = false
    /// When each request in flight was sent (closed loop) or due (open loop), in order.
    private var inFlight = TimestampQueue()
    /// Open loop: requests due but not sent (the pipeline was full or the connection down), by due time.
    private var backlog = TimestampQueue()
    /// Open loop: how many requests this slot has made due.
    private var scheduled = 0
    /// Since when connecting has failed, without a connection in between.
    private var failingSince: Int64?
    private var received: ByteBuffer?
    private var closeAfterReplies = false

    init(index: Int, quota: Int, keys: KeySource, driver: LoopDriver) {
        self.index = index
        remaining = quota
        self.keys = keys
        self.driver = driver
    }

    private var plan: BenchPlan { driver.plan }

    /// Whether more requests may be made now.
    private func maySend(now: Int64) -> Bool { remaining > 0 && now < driver.sendingEnds }

    func connect() {
        guard !done, channel == nil, !connecting else { return }
        connecting = true
        let bound = NIOLoopBound(self, eventLoop: driver.loop)
        ClientBootstrap(group: driver.loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.nanoseconds(plan.timeoutNanoseconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LoadConnectionHandler(slot: bound.value))
                }
            }
            .connect(host: plan.target.host, port: plan.target.port)
            .assumeIsolated()
            .whenComplete { [self] result in
                connecting = false
                switch result {
                case .success(let channel):
                    failingSince = nil
                    if done {
                        channel.close(promise: nil)
                    } else {
                        self.channel = channel
                        send(now: monotonicNanoseconds())
                    }
                case .failure:
                    driver.recorder.count { $0.refused += 1 }
                    let now = monotonicNanoseconds()
                    let since = failingSince ?? now
                    failingSince = since
                    // A server that stays unreachable for the timeout ends this connection's part of the run.
                    if now - since >= plan.timeoutNanoseconds || now >= driver.sendingEnds {
                        finish()
                    } else {
                        driver.loop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { [self] in connect() }
                    }
                }
            }
    }

    /// Sends what may be sent: closed loop, up to the pipeline; open loop, what is due, up to the pipeline.
    private func send(now: Int64) {
        guard let channel, !closeAfterReplies else { return }
        var buffer = channel.allocator.buffer(capacity: 0)
        var wrote = false
        if plan.rate == nil {
            while inFlight.count < plan.pipeline, maySend(now: now) {
                remaining -= 1
                driver.template.write(key: keys.next(), into: &buffer)
                inFlight.append(now)
                wrote = true
            }
        } else {
            while inFlight.count < plan.pipeline, !backlog.isEmpty {
                driver.template.write(key: keys.next(), into: &buffer)
                inFlight.append(backlog.removeFirst())
                wrote = true
            }
        }
        if wrote { channel.writeAndFlush(buffer, promise: nil) }
        finishIfDone()
    }

    /// Open loop: when this slot's next request falls due (monotonic nanoseconds); `.max` when none will.
    var nextDue: Int64 {
        guard !done, let rate = plan.rate, remaining > 0 else { return .max }
        return due(scheduled, rate: rate)
    }

    /// The k-th request of slot i of C is due at start + (k C + i) / rate: the slots' requests interleave evenly.
    private func due(_ number: Int, rate: Double) -> Int64 {
        driver.start + Int64((Double(number * plan.connections + index) * 1e9 / rate).rounded())
    }

    /// Makes due what the rate asks for (open loop), sends it, and times out late replies.
    func tick(now: Int64) {
        guard !done else { return }
        if let rate = plan.rate {
            while remaining > 0 {
                let due = due(scheduled, rate: rate)
                guard due <= now, due < driver.sendingEnds else { break }
                backlog.append(due)
                scheduled += 1
                remaining -= 1
            }
            if now >= driver.sendingEnds { remaining = 0 }
        }
        if let oldest = inFlight.first, now - oldest >= plan.timeoutNanoseconds, let channel {
            driver.recorder.count { $0.timeouts += inFlight.count }
            inFlight.removeAll()
            channel.close(promise: nil)
            return
        }
        if plan.rate != nil { send(now: now) } else { finishIfDone() }
    }

    /// Replies arrived.
    func received(_ bytes: ByteBuffer) {
        if var received = self.received, received.readableBytes > 0 {
            var bytes = bytes
            received.writeBuffer(&bytes)
            self.received = received
        } else {
            self.received = bytes
        }
        guard var buffer = self.received else { return }
        let now = monotonicNanoseconds()
        do {
            while buffer.readableBytes > 0 {
                let scanned: (length: Int, outcome: ReplyOutcome)? = try buffer.withUnsafeReadableBytes { bytes throws(ReplyProtocolError) in
                    switch plan.target {
                    case .line: return try ReplyScanner.resp(bytes)
                    case .http, .grpc:
                        guard let response = try ReplyScanner.http(bytes) else { return nil }
                        if response.closes { closeAfterReplies = true }
                        let outcome: ReplyOutcome =
                            response.status == 200 ? .allowed : response.status == 429 ? .denied : .errorReply
                        return (response.length, outcome)
                    }
                }
                guard let (length, outcome) = scanned else { break }
                buffer.moveReaderIndex(forwardBy: length)
                guard !inFlight.isEmpty else { throw ReplyProtocolError("a reply to no request") }
                driver.recorder.record(nanoseconds: now - inFlight.removeFirst(), outcome)
            }
        } catch {
            driver.recorder.count { $0.protocolErrors += 1 }
            self.received = nil
            channel?.close(promise: nil)
            return
        }
        self.received = buffer.readableBytes > 0 ? buffer : nil
        if closeAfterReplies, inFlight.isEmpty { channel?.close(promise: nil) }
    }

    /// After a read: send what the replies made room for.
    func readComplete() { send(now: monotonicNanoseconds()) }

    /// The connection closed (by either side).
    func closed() {
        channel = nil
        received = nil
        closeAfterReplies = false
        if !inFlight.isEmpty {
            driver.recorder.count { $0.closed += inFlight.count }
            inFlight.removeAll()
        }
        guard !done else { return }
        if finishIfDone() { return }
        driver.loop.assumeIsolated().scheduleTask(in: .milliseconds(10)) { [self] in connect() }
    }

    /// Finishes when nothing more will be sent and nothing is awaited.
    @discardableResult
    private func finishIfDone() -> Bool {
        guard !done, inFlight.isEmpty, backlog.isEmpty, !maySend(now: monotonicNanoseconds()) else { return done }
        if plan.rate != nil, remaining > 0 { return false }
        finish()
        return true
    }

    private func finish() {
        guard !done else { return }
        done = true
        channel?.close(promise: nil)
        driver.slotFinished()
    }

    func stop() {
        remaining = 0
        backlog.removeAll()
        inFlight.removeAll()
        finish()
    }
}

/// The pipeline's one handler: hands bytes and events to the slot.
final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let slot: LoadSlot

    init(slot: LoadSlot) { self.slot = slot }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        slot.received(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        slot.readComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        slot.closed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
