import DistillCore
import Foundation

/// A gridworld with a path drawn on it, as a PNG (`distill eval --path-image`). Each cell is
/// `cellPixels` square: walls dark grey, −1 cells pink, terminal cells green (+10, +5) or red
/// (−5, −10), other cells white, a light grey line between cells; the path's cells carry a blue
/// square in their middle, the start cell's is orange.
struct GridPathImage {
    let grid: GridLayout
    let path: [Int]
    var cellPixels = 12

    static let wall: [UInt8] = [64, 64, 64]
    static let empty: [UInt8] = [255, 255, 255]
    static let penalty: [UInt8] = [244, 194, 194]
    static let bonus: [UInt8] = [200, 235, 200]
    static let goodTerminal: [UInt8] = [44, 160, 44]
    static let badTerminal: [UInt8] = [214, 39, 40]
    static let line: [UInt8] = [210, 210, 210]
    static let pathMark: [UInt8] = [31, 119, 180]
    static let startMark: [UInt8] = [255, 127, 14]

    /// The colour of a cell's background.
    static func colour(_ cell: GridCell) -> [UInt8] {
        switch cell {
        case .empty: empty
        case .wall: wall
        case .reward(let r): r < 0 ? penalty : bonus
        case .terminal(let r): r > 0 ? goodTerminal : badTerminal
        }
    }

    /// RGB pixels, row-major.
    func pixels() -> (width: Int, height: Int, rgb: [UInt8]) {
        let side = grid.size * cellPixels
        var rgb = [UInt8](repeating: 0, count: side * side * 3)
        let onPath = Set(path)
        let inset = cellPixels / 4
        for row in 0..<grid.size {
            for column in 0..<grid.size {
                let state = row * grid.size + column
                for y in 0..<cellPixels {
                    for x in 0..<cellPixels {
                        var colour = Self.colour(grid.cells[state])
                        if x == 0 || y == 0 { colour = Self.line }
                        let middle =
                            (inset..<(cellPixels - inset)).contains(x) && (inset..<(cellPixels - inset)).contains(y)
                        if middle && state == path.first {
                            colour = Self.startMark
                        } else if middle && onPath.contains(state) {
                            colour = Self.pathMark
                        }
                        let offset = ((row * cellPixels + y) * side + column * cellPixels + x) * 3
                        rgb[offset..<offset + 3] = colour[0..<3]
                    }
                }
            }
        }
        return (side, side, rgb)
    }

    /// The PNG file's bytes: 8-bit RGB, zlib stream of stored (uncompressed) deflate blocks.
    func png() -> [UInt8] {
        let (width, height, rgb) = pixels()
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (width * 3 + 1))
        for y in 0..<height {
            raw.append(0)  // filter type None
            raw += rgb[(y * width * 3)..<((y + 1) * width * 3)]
        }
        return PNG.file(width: width, height: height, rawScanlines: raw)
    }
}

/// The PNG container (ISO/IEC 15948): signature, IHDR, IDAT, IEND chunks, each with a CRC-32
/// (polynomial 0xEDB88320, reflected); IDAT holds a zlib stream (RFC 1950) of stored deflate
/// blocks (RFC 1951, BTYPE 00) with its Adler-32.
enum PNG {
    static func file(width: Int, height: Int, rawScanlines: [UInt8]) -> [UInt8] {
        var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]  // 8 bits, RGB, deflate, adaptive filtering, no interlace
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header)
            + chunk("IDAT", zlibStored(rawScanlines)) + chunk("IEND", [])
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + typed + bigEndian(crc32(typed))
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // deflate, 32 KiB window; (0x78 << 8 | 0x01) % 31 == 0
        var offset = 0
        repeat {
            let count = min(65_535, data.count - offset)
            let last: UInt8 = offset + count == data.count ? 1 : 0
            out.append(last)
            out += [UInt8(count & 0xff), UInt8(count >> 8), UInt8(~count & 0xff), UInt8((~count >> 8) & 0xff)]
            out += data[offset..<offset + count]
            offset += count
        } while offset < data.count
        return out + bigEndian(adler32(data))
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = crc32Table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static let crc32Table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        return crc
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in bytes {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return b << 16 | a
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }
}
