"""`synth gallery DATASET --stats`: what a rendered dataset holds, measured over every sample.

One self-contained HTML page (images as data URIs, charts as inline SVG, every text escaped):
- the clipped-highlight histogram: per sample, the share of the person's (mask) pixels whose
  channels are all >= CLIPPED_LEVEL;
- where the person is and how large: the height and centre of the projected person box
  (`camera.framing.person_box`: the whole person, before the border or an occluder cuts it) and
  of the visible mask's box (`bbox`);
- the truncation share (samples with a joint outside the image, `joints_in_image`), the occluder
  share and how much of the person occluders hide, the visible-joint share;
- the use of outfits, hair styles, shoes, garment photos and background photos (the labels'
  `worn`, `garments` and `background`);
- a grid of samples drawn at random (seeded) from all shards, and for a few of them the layers
  (RGB with the skeleton, mask, parts, depth) side by side.
"""
from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from synth.gallery.page import (CSS, OVERLAY_MIN_SIZE, _decode, _ImageSink, _read_json, colour_parts, depth_preview,
                                draw_skeleton, iter_tar_samples, part_colours)
from synth.io_utils import InputError, atomic_write_text
from synth.rng import Stream, stream

CLIPPED_LEVEL = 235     # an 8-bit channel at or above this is blown out

STATS_CSS = """
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{background:#fff;border:1px solid #ccc;padding:8px}
.chart h3{font-size:14px;margin:0 0 4px}
.bars td.bar{width:260px} .bars .b{background:#4a7bd0;height:10px}
.thumbs{display:flex;flex-wrap:wrap;gap:4px}
.thumbs figure img{width:128px}
#layers .sample{width:auto} #layers .imgs{flex-wrap:nowrap}
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _name(asset_id: str) -> str:
    """An asset's short name: its file stem (makehuman_assets/hair/short04/short04.mhclo -> short04)."""
    return Path(str(asset_id)).stem


def sample_stats(members: dict, width: int, height: int) -> dict:
    """The figures of one sample from its members (RGB, mask and labels)."""
    lab = json.loads(members["json"])
    rgb = _decode(members.get("rgb.jpg") or members.get("rgb.png"), cv2.IMREAD_COLOR)
    mask = _decode(members.get("mask.png"), cv2.IMREAD_UNCHANGED)
    person = mask > 127 if mask is not None else None
    clipped = None
    if rgb is not None and person is not None and person.any():
        clipped = float(((rgb >= CLIPPED_LEVEL).all(-1) & person).sum() / person.sum())
    frame = (lab.get("camera") or {}).get("framing") or {}
    box = frame.get("person_box")
    bbox = lab.get("bbox")
    in_image = lab.get("joints_in_image")
    visible = lab.get("joints_visible")
    occ = lab.get("occluder")
    worn = {w.get("kind"): _name(w.get("asset", "")) for w in lab.get("worn") or [] if isinstance(w, dict)}
    return {
        "clipped": clipped,
        "person_height": (box[3] - box[1]) / height if box else None,
        "person_centre": [((box[0] + box[2]) / 2) / width, ((box[1] + box[3]) / 2) / height] if box else None,
        "visible_height": (bbox[3] - bbox[1] + 1) / height if bbox else None,
        "truncated": (not all(in_image)) if in_image is not None else None,
        "truncation_side": (frame.get("truncation") or {}).get("side") if frame.get("truncation") else None,
        "occluded": occ is not None if "occluder" in lab else None,
        "hidden_share": occ.get("hidden_share") if isinstance(occ, dict) else None,
        "visible_joints": (sum(map(bool, visible)) / len(visible)) if visible else None,
        "outfit": worn.get("outfit"), "hair": worn.get("hair", "(none)" if worn else None),
        "shoes": worn.get("shoes", "(none)" if worn else None),
        "photos": [str(g.get("id")) for g in lab.get("garments") or [] if isinstance(g, dict) and g.get("id")],
        "background": str((lab.get("background") or {}).get("id")),
    }


def _histogram_svg(values, lo: float, hi: float, bins: int, xlabel: str, fmt: str = "{:.2f}") -> str:
    """An SVG bar chart of `values` (None left out) in `bins` over [lo, hi]; values beyond the
    range count in the first or last bin."""
    vals = np.asarray([v for v in values if v is not None], np.float64)
    counts, edges = np.histogram(np.clip(vals, lo, hi), bins=bins, range=(lo, hi))
    w, h, pad = 360, 150, 28
    top = max(int(counts.max()) if len(counts) else 1, 1)
    bw = (w - 2 * pad) / bins
    bars = "".join(
        f'<rect x="{pad + i * bw:.1f}" y="{h - pad - c / top * (h - 2 * pad):.1f}" width="{bw - 1:.1f}" '
        f'height="{c / top * (h - 2 * pad):.1f}" fill="#4a7bd0"><title>{_esc(fmt.format(edges[i]))}–'
        f'{_esc(fmt.format(edges[i + 1]))}: {c}</title></rect>' for i, c in enumerate(counts))
    ticks = "".join(f'<text x="{pad + i * (w - 2 * pad) / 4:.1f}" y="{h - 10}" font-size="10" '
                    f'text-anchor="middle">{_esc(fmt.format(lo + i * (hi - lo) / 4))}</text>' for i in range(5))
    return (f'<svg width="{w}" height="{h}" role="img"><line x1="{pad}" y1="{h - pad}" x2="{w - pad}" '
            f'y2="{h - pad}" stroke="#333"/>{bars}{ticks}<text x="{pad}" y="12" font-size="10">max {top} samples'
            f'</text><text x="{w - pad}" y="12" font-size="10" text-anchor="end">{_esc(xlabel)}</text></svg>')


def _scatter_svg(points, width: int, height: int) -> str:
    """Person box centres in the image frame (the frame drawn as a rectangle)."""
    s = 220 / max(width, height)
    w, h, pad = width * s, height * s, 20
    dots = "".join(f'<circle cx="{pad + x * w:.1f}" cy="{pad + y * h:.1f}" r="2.5" fill="#d04a4a" '
                   f'fill-opacity="0.6"/>' for x, y in points)
    return (f'<svg width="{w + 2 * pad:.0f}" height="{h + 2 * pad:.0f}" role="img"><rect x="{pad}" y="{pad}" '
            f'width="{w:.1f}" height="{h:.1f}" fill="#eee" stroke="#333"/>{dots}</svg>')


def _use_table(counter: Counter, total: int, top: int = 20) -> str:
    if not counter:
        return "<p>(not recorded)</p>"
    most = counter.most_common(top)
    peak = most[0][1]
    rows = "".join(f'<tr><td>{_esc(k)}</td><td>{n}</td><td>{n / max(total, 1) * 100:.0f}%</td>'
                   f'<td class="bar"><div class="b" style="width:{n / peak * 100:.0f}%"></div></td></tr>'
                   for k, n in most)
    more = f"<p>{len(counter) - top} more not shown</p>" if len(counter) > top else ""
    return f'<table class="bars"><tr><th>name</th><th>samples</th><th>share</th><th></th></tr>{rows}</table>{more}'


def _chart(title: str, body: str, note: str = "") -> str:
    return f'<div class="chart"><h3>{_esc(title)}</h3>{body}<div>{_esc(note)}</div></div>'


def _mean(vals) -> float | None:
    v = [x for x in vals if x is not None]
    return float(np.mean(v)) if v else None


def _share(vals) -> float | None:
    v = [bool(x) for x in vals if x is not None]
    return float(np.mean(v)) if v else None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def _layers(members: dict, key: str, meta: dict, colours, sink: _ImageSink) -> str:
    lab = json.loads(members["json"])
    rgb = cv2.cvtColor(_decode(members.get("rgb.jpg") or members.get("rgb.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    scale = max(1, -(-OVERLAY_MIN_SIZE // max(rgb.shape[:2])))
    big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1) if scale > 1 else rgb
    j2 = np.asarray(lab["joints_2d"], np.float64)
    figs = [(sink.add(f"{key}.rgb", rgb, "jpg"), "RGB"),
            (sink.add(f"{key}.overlay", draw_skeleton(big, (j2 + 0.5) * scale - 0.5, meta.get("joints") or []), "jpg"),
             "RGB + skeleton")]
    mask = _decode(members.get("mask.png"), cv2.IMREAD_UNCHANGED)
    figs.append((sink.add(f"{key}.mask", mask, "png"), "mask"))
    parts = _decode(members.get("parts.png"), cv2.IMREAD_UNCHANGED)
    figs.append((sink.add(f"{key}.parts", colour_parts(parts.astype(np.uint8), colours), "png"), "parts"))
    prev, rng = depth_preview(_decode(members.get("depth.png"), cv2.IMREAD_UNCHANGED))
    figs.append((sink.add(f"{key}.depth", prev, "png"),
                 f"depth {rng[0] / 1000:.2f}–{rng[1] / 1000:.2f} m" if rng else "depth (empty)"))
    vis = lab.get("joints_visible") or []
    occ = lab.get("occluder")
    cap = (f"{sum(map(bool, vis))}/{len(vis)} joints visible; "
           f"{'occluder hides ' + _pct(occ.get('hidden_share')) if isinstance(occ, dict) else 'no occluder'}")
    imgs = "".join(f'<figure><img src="{src}" alt="{_esc(key)} {_esc(c)}"><figcaption>{_esc(c)}</figcaption>'
                   f'</figure>' for src, c in figs)
    return f'<div class="sample"><h3>{_esc(key)} <small>{_esc(cap)}</small></h3><div class="imgs">{imgs}</div></div>'


def write_stats_page(dataset_dir: Path, out_html: Path | None = None, grid_samples: int = 48,
                     layer_samples: int = 4, seed: int = 0, inline: bool = True) -> Path:
    """Write the statistics page of the dataset in `dataset_dir` (default
    DATASET/gallery/stats.html): figures over every sample of every shard, a seeded random grid
    of `grid_samples` samples from all shards, and the layers of `layer_samples` of them."""
    dataset_dir = Path(dataset_dir)
    meta_path = dataset_dir / "dataset.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path}: not found (not a rendered dataset; run `synth render` first)")
    if grid_samples < 1 or layer_samples < 0:
        raise InputError(f"grid_samples must be at least 1 and layer_samples at least 0, got {grid_samples}, "
                         f"{layer_samples}")
    meta = _read_json(meta_path)
    W, H = (meta.get("image_size") or [0, 0])[:2]
    tars = sorted((dataset_dir / "shards").glob("*.tar"))
    if not tars:
        raise InputError(f"{dataset_dir / 'shards'}: no shard (*.tar) to show")
    stats, refs = [], []
    for t in tars:
        for s in iter_tar_samples(t):
            if "json" not in s.members:
                raise InputError(f"{t}: sample '{s.key}' has no labels (KEY.json)")
            try:
                stats.append(sample_stats(s.members, W, H))
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{t}: sample '{s.key}' has unreadable labels ({e.__class__.__name__}: {e})") from None
            refs.append((t, s.key))
    n = len(stats)
    rng = stream(seed, Stream.STATS_GALLERY)
    order = rng.permutation(n)
    grid = sorted(int(i) for i in order[:grid_samples])
    layered = set(int(i) for i in order[:layer_samples])
    wanted = {refs[i]: i for i in grid}

    out_html = Path(out_html) if out_html is not None else dataset_dir / "gallery" / "stats.html"
    sink = _ImageSink(out_html, inline)
    colours = part_colours(meta.get("parts") or {"0": "background"})
    thumbs, layers = {}, {}
    for t in tars:
        if not any(ref[0] == t for ref in wanted):
            continue
        for s in iter_tar_samples(t):
            i = wanted.get((t, s.key))
            if i is None:
                continue
            rgb = _decode(s.members.get("rgb.jpg") or s.members.get("rgb.png"), cv2.IMREAD_COLOR)
            cap = f"{s.key} ({t.name})"
            thumbs[i] = (f'<figure><img src="{sink.add(f"{s.key}.thumb", cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), "jpg")}"'
                         f' alt="{_esc(cap)}" data-key="{_esc(s.key)}" data-shard="{_esc(t.name)}">'
                         f'<figcaption>{_esc(s.key)}</figcaption></figure>')
            if i in layered:
                layers[i] = _layers(s.members, s.key, meta, colours, sink)

    col = {k: [s[k] for s in stats] for k in stats[0]} if stats else {}
    clipped = [c for c in col.get("clipped", []) if c is not None]
    over10 = float(np.mean([c > 0.10 for c in clipped])) if clipped else None
    summary = [
        ("samples", f"{n} in {len(tars)} shards"),
        ("mean clipped share of person pixels (all channels >= {})".format(CLIPPED_LEVEL), _pct(_mean(clipped))),
        ("samples with more than 10% clipped", _pct(over10)),
        ("truncated (a joint outside the image)", _pct(_share(col.get("truncated", [])))),
        ("occluded (an occluder in front)", _pct(_share(col.get("occluded", [])))),
        ("mean share of the person an occluder hides, when there is one", _pct(_mean(col.get("hidden_share", [])))),
        ("mean share of joints visible", _pct(_mean(col.get("visible_joints", [])))),
        ("mean person height (projected box / image height)", _pct(_mean(col.get("person_height", [])))),
    ]
    sides = Counter(s for s in col.get("truncation_side", []) if s)
    photos = Counter(p for ps in col.get("photos", []) for p in set(ps))
    charts = [
        _chart("clipped share of person pixels, per sample", _histogram_svg(clipped, 0.0, 1.0, 20, "share clipped")),
        _chart("person height / image height (projected person box)",
               _histogram_svg(col.get("person_height", []), 0.0, 1.5, 30, "height share")),
        _chart("visible mask box height / image height", _histogram_svg(col.get("visible_height", []), 0.0, 1.0, 20,
                                                                         "height share")),
        _chart("person box centre in the image", _scatter_svg([c for c in col.get("person_centre", []) if c], W or 1,
                                                              H or 1), "projected person box centres"),
        _chart("share of the person an occluder hides", _histogram_svg(col.get("hidden_share", []), 0.0, 1.0, 20,
                                                                        "hidden share")),
        _chart("share of joints visible, per sample", _histogram_svg(col.get("visible_joints", []), 0.0, 1.0, 15,
                                                                      "visible share")),
    ]
    uses = [
        _chart("truncation: the border that cuts (framing draw)", _use_table(sides, n)),
        _chart("outfits", _use_table(Counter(o for o in col.get("outfit", []) if o), n)),
        _chart("hair", _use_table(Counter(h for h in col.get("hair", []) if h), n)),
        _chart("shoes", _use_table(Counter(h for h in col.get("shoes", []) if h), n)),
        _chart(f"garment photos ({len(photos)} distinct)", _use_table(photos, n, top=15)),
        _chart(f"background photos ({len(set(col.get('background', [])))} distinct)",
               _use_table(Counter(col.get("background", [])), n, top=15)),
    ]
    summary_html = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in summary)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>synth statistics: {_esc(dataset_dir.name)}</title>
<style>{CSS}{STATS_CSS}</style></head><body>
<h1>synth dataset statistics: {_esc(dataset_dir.name)}</h1>
<table id="summary">{summary_html}</table>
<h2>distributions (every sample)</h2><div class="charts" id="charts">{''.join(charts)}</div>
<h2>use</h2><div class="charts" id="uses">{''.join(uses)}</div>
<h2>{len(grid)} samples drawn at random from all shards (seed {seed})</h2>
<div class="thumbs" id="grid">{''.join(thumbs[i] for i in grid if i in thumbs)}</div>
<h2>layers of {len(layers)} of them</h2><div class="grid" id="layers">{''.join(layers[i] for i in sorted(layers))}</div>
</body></html>
"""
    atomic_write_text(out_html, page)
    return out_html
