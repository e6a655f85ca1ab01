"""A minimal reader for the uncompressed, single-part, scanline OpenEXR files that the renderer
asks Blender to write (codec NONE). It avoids a compiled dependency and costs one `np.frombuffer`
per scanline block; anything else (tiles, compression, multi-part) is refused with an InputError.

EXR layout (openexr.com, "OpenEXR file layout"): magic, version, a header of
(name\\0, type\\0, size:int32, value) attributes ending in \\0, a table of one uint64 offset per
scanline chunk, then chunks of (y:int32, size:int32, data). Uncompressed chunks hold one
scanline each; in a scanline the channels follow one another in the header's (alphabetical)
order, each as W values of its pixel type (0 = uint32, 1 = half, 2 = float).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from synth.io_utils import InputError

_MAGIC = 20000630
_PIXEL_DTYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_SINGLE_PART_SCANLINE_FLAGS_MASK = 0x200 | 0x800 | 0x1000   # tiled | deep | multi-part


def _read_cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode("latin-1"), end + 1


def read_exr_channels(path: Path | str) -> dict[str, np.ndarray]:
    """Every channel of an uncompressed scanline EXR as an (H, W) float32 array, row 0 = top."""
    path = Path(path)
    buf = path.read_bytes()
    if len(buf) < 8:
        raise InputError(f"{path}: not an OpenEXR file (too short)")
    magic, version = struct.unpack_from("<ii", buf, 0)
    if magic != _MAGIC:
        raise InputError(f"{path}: not an OpenEXR file (bad magic number)")
    if version & _SINGLE_PART_SCANLINE_FLAGS_MASK:
        raise InputError(f"{path}: tiled, deep or multi-part EXR is not supported (flags {version:#x})")
    pos = 8
    channels: list[tuple[str, int]] = []
    compression = None
    data_window = None
    while buf[pos] != 0:
        name, pos = _read_cstring(buf, pos)
        _type, pos = _read_cstring(buf, pos)
        (size,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        value = buf[pos:pos + size]
        pos += size
        if name == "channels":
            cpos = 0
            while value[cpos] != 0:
                cname, cpos = _read_cstring(value, cpos)
                (pixel_type,) = struct.unpack_from("<i", value, cpos)
                x_sampling, y_sampling = struct.unpack_from("<ii", value, cpos + 8)
                if (x_sampling, y_sampling) != (1, 1):
                    raise InputError(f"{path}: subsampled channel {cname} is not supported")
                channels.append((cname, pixel_type))
                cpos += 16
        elif name == "compression":
            compression = value[0]
        elif name == "dataWindow":
            data_window = struct.unpack("<iiii", value)
    pos += 1
    if compression != 0:
        raise InputError(f"{path}: compressed EXR (compression {compression}) is not supported")
    if data_window is None or not channels:
        raise InputError(f"{path}: EXR header lacks dataWindow or channels")
    xmin, ymin, xmax, ymax = data_window
    width, height = xmax - xmin + 1, ymax - ymin + 1
    # Header channel order is the order inside each scanline; build one structured row type.
    row_dtype = np.dtype([(cname, _PIXEL_DTYPES[ptype], (width,)) for cname, ptype in channels])
    offsets = np.frombuffer(buf, dtype="<u8", count=height, offset=pos)
    chunk_dtype = np.dtype([("y", "<i4"), ("size", "<i4"), ("row", row_dtype)])
    first = int(offsets[0])
    contiguous = np.all(np.diff(offsets.astype(np.int64)) == chunk_dtype.itemsize)
    if contiguous and first + height * chunk_dtype.itemsize <= len(buf):
        chunks = np.frombuffer(buf, dtype=chunk_dtype, count=height, offset=first)
    else:
        chunks = np.empty(height, dtype=chunk_dtype)
        for i, off in enumerate(offsets):
            chunks[i] = np.frombuffer(buf, dtype=chunk_dtype, count=1, offset=int(off))[0]
    if np.any(chunks["size"] != row_dtype.itemsize):
        raise InputError(f"{path}: EXR scanline size does not match its channels")
    order = np.argsort(chunks["y"], kind="stable")
    rows = chunks["row"][order]
    return {cname: np.ascontiguousarray(rows[cname], dtype=np.float32) for cname, _ in channels}
