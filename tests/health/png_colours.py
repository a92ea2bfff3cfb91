#!/usr/bin/env python3
"""Checks a screenshot contains the heatmap: at least CELLS cells' worth (half of a 64x64 cell
each) of pixels in the given colours. A minimal PNG decoder (8-bit RGB/RGBA, non-interlaced,
as Chromium writes) so the test needs nothing beyond python3.
usage: png_colours.py FILE CELLS HEX [HEX...]"""
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1: line[i] = (line[i] + a) & 255
            elif kind == 2: line[i] = (line[i] + b) & 255
            elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def main():
    path, cells, colours = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    width, height, channels, rows = decode(path)
    wanted = {bytes.fromhex(c) for c in colours}
    count = sum(1 for row in rows for x in range(width)
                if row[x * channels:x * channels + 3] in wanted)
    need = cells * 64 * 64 // 2
    print(f"{path}: {width}x{height}, {count} heatmap pixels (need {need})")
    sys.exit(0 if count >= need else 1)


if __name__ == "__main__":
    main()
