#!/usr/bin/env python3
"""Writes src/core/image/font.ts: printable ASCII as a 1-bit bitmap font (DejaVu Sans Mono, public
licence), for the PNG overlay's legend, which is drawn in TypeScript so it looks the same everywhere.
Run with Debian's python3 (PIL): /usr/bin/python3 scripts/gen-legend-font.py"""
import base64
from pathlib import Path
from PIL import Image, ImageDraw, ImageFont

W, H, SIZE = 6, 11, 10
font = ImageFont.truetype('/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf', SIZE)
bits = []
for code in range(32, 127):
    img = Image.new('L', (W, H), 0)
    ImageDraw.Draw(img).text((0, -1), chr(code), fill=255, font=font)
    bits.extend(1 if img.getpixel((x, y)) >= 110 else 0 for y in range(H) for x in range(W))
packed = bytearray((len(bits) + 7) // 8)
for i, b in enumerate(bits):
    if b:
        packed[i >> 3] |= 0x80 >> (i & 7)
out = Path(__file__).resolve().parent.parent / 'src' / 'core' / 'image' / 'font.ts'
out.write_text(f"""/**
 * Printable ASCII (32..126) as a 1-bit bitmap font, {W}×{H} pixels a glyph, row-major, most significant
 * bit first; rendered from DejaVu Sans Mono at {SIZE} px by scripts/gen-legend-font.py.
 */
export const FONT = {{ width: {W}, height: {H}, first: 32, last: 126, bits: '{base64.b64encode(bytes(packed)).decode()}' }} as const;
""")
print(out, len(packed), 'bytes')
