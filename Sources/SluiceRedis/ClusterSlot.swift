/// Redis Cluster's key slot: CRC16 (XMODEM) of the key's hash tag, or of the whole key, modulo 16384.
enum ClusterSlot {
    /// Slots in a cluster.
    static let count = 16_384

    /// The slot of `key`: of the bytes between its first `{` and the next `}` when that is not empty, else of
    /// all of it. Sluice's keys carry one tag per bucket (`prefix{policy|key}:fw`), so a bucket lives on one node.
    static func of(_ key: some Collection<UInt8>) -> Int {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return Int(crc16(key)) % count }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return Int(crc16(key)) % count }
        return Int(crc16(key[afterOpen..<close])) % count
    }

    /// CRC16/XMODEM: polynomial 0x1021, initial 0, no reflection (as Redis's `crc16.c`).
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte)) & 0xFF]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
