"""Fake key values: text codes like ``OAZKI-OATJ9-A4JDC`` and PNG images as data URLs."""

import base64
import random
import struct
import zlib

from sandbox.catalogue import KeyType

KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
KEY_GROUPS = 3
KEY_GROUP_LENGTH = 5

# The image is a 4 x 4 grid of black or white cells, 4 pixels each. Sixteen random cells
# give 65,536 patterns, so two keys of one order almost never look alike.
GRID_CELLS = 4
CELL_PIXELS = 4

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DATA_URL_PREFIX = "data:image/png;base64,"

_GREYSCALE = 0
_FILTER_NONE = b"\x00"


def make_key_value(key_type: KeyType, rng: random.Random, prefix: str = "") -> str:
    """Return a new key value of the given type, drawn from ``rng``."""
    if key_type is KeyType.IMAGE:
        return PNG_DATA_URL_PREFIX + base64.b64encode(make_png(rng)).decode("ascii")

    groups = [
        "".join(rng.choice(KEY_ALPHABET) for _ in range(KEY_GROUP_LENGTH))
        for _ in range(KEY_GROUPS)
    ]
    if prefix:
        groups.insert(0, prefix)
    return "-".join(groups)


def make_png(rng: random.Random) -> bytes:
    """Return a small valid PNG: an 8-bit greyscale grid of random black and white cells."""
    cells = [[rng.random() < 0.5 for _ in range(GRID_CELLS)] for _ in range(GRID_CELLS)]
    size = GRID_CELLS * CELL_PIXELS

    rows = []
    for cell_row in cells:
        pixels = bytes(0 if black else 255 for black in cell_row for _ in range(CELL_PIXELS))
        rows.extend([_FILTER_NONE + pixels] * CELL_PIXELS)

    header = struct.pack(">IIBBBBB", size, size, 8, _GREYSCALE, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + data)
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", crc)
