"""Building the gallery page: reading shards, drawing the previews, writing the HTML."""
from __future__ import annotations

import base64
import html
import json
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from synth.io_utils import InputError, atomic_write_bytes, atomic_write_text

# The 14 bones of the 15-joint set (SPEC joint names), and which side each belongs to.
BONES: list[tuple[str, str, str]] = [
    ("neck", "head_top", "centre"), ("pelvis", "neck", "centre"),
    ("neck", "right_shoulder", "right"), ("right_shoulder", "right_elbow", "right"),
    ("right_elbow", "right_wrist", "right"),
    ("neck", "left_shoulder", "left"), ("left_shoulder", "left_elbow", "left"),
    ("left_elbow", "left_wrist", "left"),
    ("pelvis", "right_hip", "right"), ("right_hip", "right_knee", "right"), ("right_knee", "right_ankle", "right"),
    ("pelvis", "left_hip", "left"), ("left_hip", "left_knee", "left"), ("left_knee", "left_ankle", "left"),
]
SIDE_RGB = {"right": (235, 50, 40), "left": (40, 110, 255), "centre": (60, 220, 60)}
JOINT_DOT_RGB = (255, 255, 0)
OVERLAY_MIN_SIZE = 256   # px: smaller renders are enlarged by a whole factor before the skeleton is drawn

# A fixed palette by part name (the names are the contract; ids come from dataset.json):
# right side in reds/pinks, left side in blues/greens, so mirrored labels stand out.
PART_PALETTE: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0),
    "head": (255, 215, 50), "torso": (190, 190, 190),
    "right_upper_arm": (220, 40, 40), "right_forearm": (255, 130, 80), "right_hand": (255, 200, 150),
    "left_upper_arm": (40, 80, 230), "left_forearm": (90, 160, 255), "left_hand": (170, 215, 255),
    "right_thigh": (170, 30, 120), "right_lower_leg": (230, 90, 180), "right_foot": (255, 175, 225),
    "left_thigh": (20, 130, 80), "left_lower_leg": (60, 200, 120), "left_foot": (160, 240, 190),
}

CSS = """
body{font-family:system-ui,sans-serif;margin:16px;background:#f4f4f4;color:#222}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:16px 0 6px}
table{border-collapse:collapse;font-size:13px;background:#fff}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
details{margin:6px 0} summary{cursor:pointer;font-weight:600}
pre{background:#fff;border:1px solid #ddd;padding:6px;font-size:12px;max-height:420px;overflow:auto}
.legend span{display:inline-block;margin:2px 8px 2px 0;font-size:13px}
.sw{display:inline-block;width:14px;height:14px;border:1px solid #555;vertical-align:middle;margin-right:4px}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.sample{background:#fff;border:1px solid #ccc;padding:8px;width:min(100%,1100px)}
.sample h3{font-size:14px;margin:0 0 6px;font-family:monospace}
.imgs{display:flex;gap:6px;flex-wrap:wrap}
figure{margin:0;text-align:center;font-size:12px}
figure img{width:256px;height:auto;image-rendering:pixelated;border:1px solid #999;background:#000}
.warn{color:#b00}
"""


@dataclass
class Sample:
    shard: str
    key: str
    members: dict[str, bytes] = field(default_factory=dict)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e.__class__.__name__})") from None


def iter_tar_samples(tar_path: Path):
    """Samples of a WebDataset shard in tar order: members KEY.FIELD grouped by KEY."""
    current: Sample | None = None
    try:
        with tarfile.open(tar_path, mode="r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                name = m.name.rsplit("/", 1)[-1]
                key, _, fld = name.partition(".")
                if current is None or key != current.key:
                    if current is not None:
                        yield current
                    current = Sample(tar_path.name, key)
                current.members[fld] = tf.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InputError(f"{tar_path}: not a readable tar shard ({e.__class__.__name__}: {e})") from None
    if current is not None:
        yield current


def _decode(data: bytes | None, flags: int) -> np.ndarray | None:
    if not data:
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def draw_skeleton(rgb: np.ndarray, joints_2d: np.ndarray, joint_names: list[str]) -> np.ndarray:
    """The RGB image (H, W, 3 uint8) with the 14 bones and 15 joints drawn on it (a copy).

    Coordinates are SPEC pixels (centre of the top-left pixel at (0, 0)); drawn with 4 bits of
    sub-pixel precision so thin bones sit where the labels say.
    """
    out = np.ascontiguousarray(rgb.copy())
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 128))
    shift = 4
    idx = {n: i for i, n in enumerate(joint_names)}

    def pt(i):
        return tuple(int(round(v * (1 << shift))) for v in joints_2d[i])

    finite = np.isfinite(joints_2d).all(axis=1)
    for a, b, side in BONES:
        if a in idx and b in idx and finite[idx[a]] and finite[idx[b]]:
            cv2.line(out, pt(idx[a]), pt(idx[b]), SIDE_RGB[side], thick, cv2.LINE_AA, shift)
    radius = max(2, thick + 1)
    for n, i in idx.items():
        if finite[i]:
            cv2.circle(out, pt(i), radius << shift, JOINT_DOT_RGB, -1, cv2.LINE_AA, shift)
            cv2.circle(out, pt(i), radius << shift, (0, 0, 0), 1, cv2.LINE_AA, shift)
    return out


def part_colours(parts_meta: dict) -> dict[int, tuple[str, tuple[int, int, int]]]:
    """Part id -> (name, RGB) from dataset.json's `parts`; unknown names get a stable colour."""
    out = {}
    for k, name in sorted(parts_meta.items(), key=lambda kv: int(kv[0])):
        rgb = PART_PALETTE.get(name)
        if rgb is None:
            h = zlib.crc32(name.encode())
            rgb = (64 + h % 192, 64 + (h >> 8) % 192, 64 + (h >> 16) % 192)
        out[int(k)] = (name, rgb)
    return out


def colour_parts(parts: np.ndarray, colours: dict[int, tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    lut = np.zeros((256, 3), np.uint8)
    lut[1:] = (255, 0, 255)                      # ids dataset.json does not name show magenta
    for i, (_, rgb) in colours.items():
        if 0 <= i < 256:
            lut[i] = rgb
    return lut[parts]


def depth_preview(depth_mm: np.ndarray) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Near = bright, far = dim (64), background (0) black; and the (near, far) range in mm."""
    fg = depth_mm > 0
    out = np.zeros(depth_mm.shape, np.uint8)
    if not fg.any():
        return out, None
    d = depth_mm.astype(np.float64)
    near, far = float(d[fg].min()), float(d[fg].max())
    scaled = 255.0 - (d - near) / max(far - near, 1.0) * 191.0
    out[fg] = np.clip(scaled[fg], 64, 255).astype(np.uint8)
    return out, (int(near), int(far))


class _ImageSink:
    """Where preview images go: data URIs in the page, or files beside it."""

    def __init__(self, page: Path, inline: bool):
        self.inline = inline
        self.dir = page.parent / (page.stem + "_img")
        self.page = page

    def add(self, name: str, rgb_or_grey: np.ndarray, fmt: str) -> str:
        arr = rgb_or_grey
        if arr.ndim == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
        params = [cv2.IMWRITE_JPEG_QUALITY, 90] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 6]
        ok, buf = cv2.imencode(f".{fmt}", arr, params)
        if not ok:
            raise InputError(f"{name}: cannot encode preview image")
        data = buf.tobytes()
        if self.inline:
            mime = "image/jpeg" if fmt == "jpg" else "image/png"
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        path = self.dir / f"{name}.{fmt}"
        atomic_write_bytes(path, data)
        return f"{self.dir.name}/{path.name}"


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(e) for e in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(e)}" for k, e in v.items())
    return str(v)


def _labels_table(lab: dict) -> str:
    rows = []
    pose = lab.get("pose") or {}
    rows.append(("pose", f"{pose.get('source', '?')}: {pose.get('id', '?')}" if isinstance(pose, dict) else pose))
    body = lab.get("body")
    if body is not None:
        rows.append(("body shape", _fmt(body)))
    for g in lab.get("garments") or []:
        if isinstance(g, dict):
            extra = {k: v for k, v in g.items() if k != "id"}
            rows.append(("garment", f"{g.get('id', '?')}" + (f" ({_fmt(extra)})" if extra else "")))
        else:
            rows.append(("garment", _fmt(g)))
    if not lab.get("garments"):
        rows.append(("garments", "none"))
    bg = lab.get("background")
    if bg is not None:
        rows.append(("background", _fmt(bg)))
    lights = lab.get("lights")
    if isinstance(lights, dict):
        for li in lights.get("lights", []) or []:
            rows.append(("light", _fmt(li)))
        if "environment" in lights:
            rows.append(("environment", _fmt(lights["environment"])))
        rest = {k: v for k, v in lights.items() if k not in ("lights", "environment")}
        if rest:
            rows.append(("lights", _fmt(rest)))
    elif isinstance(lights, list):
        for li in lights:
            rows.append(("light", _fmt(li)))
    cam = lab.get("camera")
    if cam is not None:
        rows.append(("camera", _fmt(cam)))
    if "K" in lab:
        K = np.asarray(lab["K"], dtype=float)
        if K.shape == (3, 3):
            rows.append(("intrinsics", f"fx={K[0, 0]:.1f} fy={K[1, 1]:.1f} cx={K[0, 2]:.1f} cy={K[1, 2]:.1f}"))
    for k in ("skin_tone", "seed", "attempt"):
        if k in lab:
            rows.append((k.replace("_", " "), _fmt(lab[k])))
    body_html = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f"<table>{body_html}</table>"


def _sample_html(s: Sample, meta: dict, colours, sink: _ImageSink) -> str:
    joint_names = meta.get("joints") or []
    notes: list[str] = []
    figs: list[str] = []
    rgb_bytes = s.members.get("rgb.jpg") or s.members.get("rgb.png")
    rgb = _decode(rgb_bytes, cv2.IMREAD_COLOR)
    lab: dict = {}
    if "json" in s.members:
        try:
            lab = json.loads(s.members["json"])
        except ValueError:
            notes.append("labels (KEY.json) are not valid JSON")
    else:
        notes.append("no labels (KEY.json)")
    if rgb is None:
        notes.append("no readable RGB image")
    else:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
        j2 = np.asarray(lab.get("joints_2d", []), dtype=np.float64)
        if j2.ndim == 2 and j2.shape == (len(joint_names), 2):
            # Small renders are enlarged (whole pixels repeated) before drawing, so that bones and
            # dots stay thin next to the person.
            scale = max(1, -(-OVERLAY_MIN_SIZE // max(rgb.shape[:2])))
            big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1) if scale > 1 else rgb
            overlay = draw_skeleton(big, (j2 + 0.5) * scale - 0.5, joint_names)
            figs.append(_figure(sink.add(f"{s.key}.overlay", overlay, "jpg"), "RGB + skeleton", s.key, "overlay",
                                scale=scale))
        else:
            notes.append(f"joints_2d missing or not {len(joint_names)}x2: skeleton not drawn")
            figs.append(_figure(sink.add(f"{s.key}.rgb", rgb, "jpg"), "RGB", s.key, "rgb"))
    mask = _decode(s.members.get("mask.png"), cv2.IMREAD_UNCHANGED)
    if mask is not None:
        figs.append(_figure(sink.add(f"{s.key}.mask", mask if mask.ndim == 2 else mask[..., 0], "png"),
                            f"mask ({(mask > 127).mean() * 100:.1f}% person)", s.key, "mask"))
    else:
        notes.append("no readable mask.png")
    parts = _decode(s.members.get("parts.png"), cv2.IMREAD_UNCHANGED)
    if parts is not None:
        if parts.ndim == 3:
            parts = parts[..., 0]
        present = sorted(int(i) for i in np.unique(parts) if i > 0)
        figs.append(_figure(sink.add(f"{s.key}.parts", colour_parts(parts.astype(np.uint8), colours), "png"),
                            f"parts ({len(present)} present)", s.key, "parts"))
    else:
        notes.append("no readable parts.png")
    depth = _decode(s.members.get("depth.png"), cv2.IMREAD_UNCHANGED)
    if depth is not None:
        prev, rng = depth_preview(depth if depth.ndim == 2 else depth[..., 0])
        cap = f"depth {rng[0] / 1000:.2f}–{rng[1] / 1000:.2f} m" if rng else "depth (empty)"
        figs.append(_figure(sink.add(f"{s.key}.depth", prev, "png"), cap, s.key, "depth"))
    else:
        notes.append("no readable depth.png")
    full = compact_json(lab)
    note_html = "".join(f'<div class="warn">{_esc(n)}</div>' for n in notes)
    return (f'<div class="sample" id="{_esc(s.key)}" data-key="{_esc(s.key)}"><h3>{_esc(s.key)} '
            f'<small>({_esc(s.shard)})</small></h3>{note_html}<div class="imgs">{"".join(figs)}</div>'
            f'<details><summary>labels</summary>{_labels_table(lab)}'
            f'<details><summary>all labels (JSON)</summary><pre>{_esc(full)}</pre></details></details></div>')


def compact_json(obj, indent: int = 0) -> str:
    """JSON with lists of numbers on one line and floats to 6 significant digits (readable labels)."""
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad} {json.dumps(str(k))}: {compact_json(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list):
        if all(not isinstance(e, (dict, list)) for e in obj):
            return "[" + ", ".join(compact_json(e) for e in obj) + "]"
        if all(isinstance(e, list) and all(not isinstance(x, (dict, list)) for x in e) for e in obj):
            return "[" + f",\n{pad} ".join(compact_json(e) for e in obj) + "]"
        return "[\n" + ",\n".join(f"{pad} {compact_json(e, indent + 1)}" for e in obj) + f"\n{pad}]"
    if isinstance(obj, float):
        return f"{obj:.6g}" if np.isfinite(obj) else json.dumps(str(obj))
    return json.dumps(obj)


def _figure(src: str, caption: str, key: str, kind: str, scale: int = 1) -> str:
    return (f'<figure><img src="{src}" alt="{_esc(key)} {kind}" data-kind="{kind}" data-key="{_esc(key)}" '
            f'data-scale="{scale}">'
            f'<figcaption>{_esc(caption)}</figcaption></figure>')


def _legend(colours) -> str:
    skel = "".join(f'<span><i class="sw" style="background:rgb{SIDE_RGB[s]}"></i>{s} bones</span>'
                   for s in ("right", "left", "centre"))
    skel += f'<span><i class="sw" style="background:rgb{JOINT_DOT_RGB}"></i>joints</span>'
    parts = "".join(f'<span data-part="{_esc(name)}"><i class="sw" style="background:rgb{rgb}"></i>'
                    f'{i} {_esc(name)}</span>' for i, (name, rgb) in colours.items())
    return (f'<div class="legend" id="skeleton-legend"><b>skeleton:</b> {skel}</div>'
            f'<div class="legend" id="part-legend"><b>parts:</b> {parts}</div>')


def _sidecar_table(shards: list[tuple[Path, dict | None]]) -> str:
    head = ("<tr><th>shard</th><th>samples</th><th>retries</th><th>failures</th>"
            "<th>s/sample (all steps)</th><th>s/sample render</th><th>tar MB</th></tr>")
    rows = []
    for tar, side in shards:
        mb = f"{tar.stat().st_size / 1e6:.2f}"
        if side is None:
            rows.append(f"<tr><td>{_esc(tar.name)}</td><td colspan=5 class=warn>no sidecar</td><td>{mb}</td></tr>")
            continue
        sps = side.get("seconds_per_sample") or {}
        total = sum(v for v in sps.values() if isinstance(v, (int, float)))
        render = sps.get("render")
        fails = side.get("failures") or []
        rows.append(f"<tr><td>{_esc(tar.name)}</td><td>{_esc(side.get('num_samples', len(side.get('keys', []))))}</td>"
                    f"<td>{_esc(side.get('retries', ''))}</td>"
                    f"<td title=\"{_esc('; '.join(map(str, fails)))}\">{len(fails)}</td>"
                    f"<td>{total:.3f}</td><td>{'' if render is None else f'{render:.3f}'}</td><td>{mb}</td></tr>")
    steps: dict[str, list[float]] = {}
    for _, side in shards:
        for k, v in ((side or {}).get("seconds_per_sample") or {}).items():
            if isinstance(v, (int, float)):
                steps.setdefault(k, []).append(float(v))
    step_html = ""
    if steps:
        step_html = ("<details><summary>seconds per sample by step (mean over shards)</summary><table>"
                     + "".join(f"<tr><th>{_esc(k)}</th><td>{np.mean(v):.4f}</td></tr>" for k, v in steps.items())
                     + "</table></details>")
    return f"<table id=shard-table>{head}{''.join(rows)}</table>{step_html}"


def _count_samples(tar: Path, side: dict | None) -> int:
    if side is not None and isinstance(side.get("num_samples"), int):
        return side["num_samples"]
    try:
        with tarfile.open(tar, mode="r:") as tf:
            return len({m.name.rsplit("/", 1)[-1].partition(".")[0] for m in tf if m.isfile()})
    except (tarfile.TarError, OSError) as e:
        raise InputError(f"{tar}: not a readable tar shard ({e.__class__.__name__})") from None


def write_gallery(dataset_dir: Path, out_html: Path | None = None, max_samples: int = 64,
                  inline: bool = True) -> Path:
    """Write the preview page of the dataset in `dataset_dir` (default DATASET/gallery/index.html),
    showing its first `max_samples` samples in shard order. Returns the page's path."""
    dataset_dir = Path(dataset_dir)
    meta_path = dataset_dir / "dataset.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: not found (not a rendered dataset; run `synth render` first)")
    meta = _read_json(meta_path)
    if max_samples < 1:
        raise InputError(f"max_samples must be at least 1, got {max_samples}")
    tars = sorted((dataset_dir / "shards").glob("*.tar"))
    if not tars:
        raise InputError(f"{dataset_dir / 'shards'}: no shard (*.tar) to show")
    shards = []
    for t in tars:
        side_path = t.with_suffix(".json")
        shards.append((t, _read_json(side_path) if side_path.is_file() else None))
    out_html = Path(out_html) if out_html is not None else dataset_dir / "gallery" / "index.html"
    sink = _ImageSink(out_html, inline)
    colours = part_colours(meta.get("parts") or {"0": "background"})

    cards: list[str] = []
    for t, _ in shards:
        if len(cards) >= max_samples:
            break
        for s in iter_tar_samples(t):
            cards.append(_sample_html(s, meta, colours, sink))
            if len(cards) >= max_samples:
                break
    total = sum(_count_samples(t, side) for t, side in shards)
    W, H = (meta.get("image_size") or ["?", "?"])[:2]
    counts = [("dataset", dataset_dir.resolve()), ("schema", meta.get("schema", "?")),
              ("image size", f"{W} × {H}"),
              ("shards", f"{len(tars)} on disk of {meta.get('num_shards', '?')} planned"),
              ("samples", f"{total} (planned {meta.get('num_shards', 0) * meta.get('samples_per_shard', 0)}; "
                          f"shown: {len(cards)})"),
              ("seed", meta.get("seed", "?")), ("joints", ", ".join(meta.get("joints") or []))]
    counts_html = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in counts)
    cfg = meta.get("config")
    cfg_text = yaml.safe_dump(cfg, sort_keys=False) if cfg is not None else "(dataset.json has no config)"
    other = {k: v for k, v in meta.items() if k not in ("config",)}
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>synth gallery: {_esc(dataset_dir.name)}</title>
<style>{CSS}</style></head><body>
<h1>synth dataset preview: {_esc(dataset_dir.name)}</h1>
<table id=counts>{counts_html}</table>
{_legend(colours)}
<details id=config><summary>configuration (dataset.json "config")</summary><pre>{_esc(cfg_text)}</pre></details>
<details><summary>dataset.json (without config)</summary><pre>{_esc(json.dumps(other, indent=1))}</pre></details>
<h2>shards</h2>{_sidecar_table(shards)}
<h2>samples</h2><div class="grid">{''.join(cards)}</div>
</body></html>
"""
    atomic_write_text(out_html, page)
    return out_html
