"""Reading a rendered dataset with the standard tools, with the decoders its members need.

The plain `webdataset` decoders get two members wrong: `.decode("rgb8")` turns the 16-bit
`depth.png` into clipped 8-bit RGB (values 0 and 255), and `"torchrgb"` into a float image with
the values 0 and 1; `parts.png` comes back as RGB rather than one id per pixel. `decode_sample`
decodes every member as ../shared/SPEC.md defines it:

    rgb       (H, W, 3) uint8 RGB              mask   (H, W) uint8, 255 on the person
    parts     (H, W) uint8 part ids, 0 = background (names in dataset.json "parts")
    depth_mm  (H, W) uint16 camera z in millimetres, 0 = background
    labels    the KEY.json dict (joints_3d_cam, joints_2d, K, cam_R, cam_t, ...)

- `open_webdataset(OUT)`: a `webdataset.WebDataset` pipeline over OUT's complete shards, mapped
  through `decode_sample` (add `.shuffle(n)`, `.batched(b)`, ... as with any pipeline).
- `open_wids(OUT)`: random access (`ds[i]`) with `wids.ShardListDataset` through the index
  OUT/index.wids.json, which `synth render` writes (`write_wids_index`) after every run.
- Hugging Face `datasets`: `load_dataset("webdataset", data_files={"train": "OUT/shards/*.tar"})`
  (the shards folder also holds the per-shard .json sidecars of SPEC.md, so `data_dir=` takes
  them for tars and fails: "ReadError: invalid header"); its PIL images keep 16-bit depth ("I;16")
  and 8-bit part ids ("L"): `np.asarray(row["depth.png"])` is right.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from synth.dataset.shards import complete_shards, shard_name
from synth.io_utils import InputError, atomic_write_json

WIDS_INDEX = "index.wids.json"


def decode_member(name: str, data: bytes):
    """One shard member's value by its name after the key ("depth.png", ".rgb.jpg", "json"):
    see the module doc; None for a member this dataset does not define."""
    name = name.lstrip(".").lower()
    if name == "json":
        return json.loads(data)
    if name in ("rgb.jpg", "rgb.png", "mask.png", "parts.png", "depth.png"):
        buf = np.frombuffer(data, dtype=np.uint8)
        if name.startswith("rgb."):
            bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        # IMREAD_UNCHANGED keeps depth's 16 bits and the single channel of mask and parts
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return None


_FIELDS = {"rgb.jpg": "rgb", "rgb.png": "rgb", "mask.png": "mask", "parts.png": "parts", "depth.png": "depth_mm",
           "json": "labels"}


def decode_sample(sample: dict) -> dict:
    """A raw sample (member name -> bytes, as webdataset or wids yield it) -> {"__key__", "rgb",
    "mask", "parts", "depth_mm", "labels"} plus the reader's own "__..." entries."""
    out = {k: v for k, v in sample.items() if k.startswith("__")}
    for name, data in sample.items():
        if name.startswith("__"):
            continue
        field = _FIELDS.get(name.lstrip(".").lower())
        if field is not None:
            raw = data if isinstance(data, (bytes, bytearray)) else data.read()
            out[field] = decode_member(name, raw)
    return out


def shard_paths(out: Path) -> list[Path]:
    """OUT's complete shards (tar and sidecar both there), in order."""
    out = Path(out)
    done = sorted(complete_shards(out))
    if not done:
        raise InputError(f"{out / 'shards'}: no complete shards")
    return [out / "shards" / f"{shard_name(s)}.tar" for s in done]


def open_webdataset(out: Path, shardshuffle: bool | int = False, **kwargs):
    """A `webdataset.WebDataset` over OUT's complete shards whose samples are decoded by
    `decode_sample`; `kwargs` go to WebDataset (e.g. `nodesplitter`, `seed`)."""
    import webdataset as wds      # imports torch: loaded only by a reader that asks for it

    urls = [str(p) for p in shard_paths(out)]
    return wds.WebDataset(urls, shardshuffle=shardshuffle, empty_check=False, **kwargs).map(decode_sample)


def write_wids_index(out: Path) -> Path | None:
    """OUT/index.wids.json: the wids dataset description of OUT's complete shards (shard paths
    relative to OUT, sample counts from the sidecars). None when no shard is complete (an index
    left from before, listing shards since found damaged and discarded, is removed)."""
    out = Path(out)
    shards = []
    for s in sorted(complete_shards(out)):
        tar = out / "shards" / f"{shard_name(s)}.tar"
        try:
            n = int(json.loads(tar.with_suffix(".json").read_text())["num_samples"])
        except (OSError, ValueError, KeyError, TypeError):
            continue          # an unreadable sidecar: that shard is left out of the index
        shards.append({"url": f"shards/{tar.name}", "nsamples": n, "filesize": tar.stat().st_size})
    path = out / WIDS_INDEX
    if not shards:
        path.unlink(missing_ok=True)
        return None
    atomic_write_json(path, {"wids_version": 1, "name": out.name, "shardlist": shards})
    return path


def _in_place(url: str) -> str:
    """wids' local name of a shard: the local file itself (no copy into a cache)."""
    return url


def open_wids(out: Path, **kwargs):
    """`wids.ShardListDataset` over OUT/index.wids.json (random access, `len`), samples decoded
    by `decode_sample`; local shards are read where they are."""
    import wids         # imports torch, like webdataset

    index = Path(out) / WIDS_INDEX
    if not index.is_file():
        raise InputError(f"{index}: no wids index (written by `synth render`)")
    kwargs.setdefault("localname", _in_place)
    return wids.ShardListDataset(str(index), transformations=[decode_sample], **kwargs)
