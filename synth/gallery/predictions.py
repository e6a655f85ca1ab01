"""`synth gallery RUN`: a page of a trained run's predictions on real evaluation photos.

For an LSP-format folder and image range (default: the run's `train.real` folder and
`eval_range`, LSP 801-1000, never trained on) the page shows:
- the overall PCK@0.2 (the 3D prediction's orthographic projection aligned by scale and
  translation, as `synth eval --real`; and the 2D head's own joints, no alignment) and the
  per-joint PCK of both;
- the best and the worst photos by the aligned PCK of their 14 labelled joints (ties broken by
  the mean error in torso lengths), each crop with the labels (white, thin), the aligned 3D
  prediction (coloured by side) and the 2D head's joints (yellow dots);
- a strip of all evaluated photos with their scores, in order.
Images are embedded as base64 JPEGs: the one file opens anywhere.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import cv2
import numpy as np

from synth.io_utils import InputError, atomic_write_text

CROP_PX = 224            # shown size of a crop
THUMB_PX = 96
CSS = """
body{font-family:system-ui,sans-serif;margin:16px;background:#f4f4f4;color:#222}
h1{font-size:20px;margin:0 0 8px} h2{font-size:16px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px;background:#fff}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right} th{background:#eee} td:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;background:#fff;border:1px solid #ccc;padding:4px;text-align:center;font-size:12px}
figure img{display:block}
.bar{display:inline-block;height:10px;background:#4a8;vertical-align:middle}
.legend span{margin-right:14px;font-size:13px}
"""


def _uri(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _draw(crop: np.ndarray, gt: np.ndarray, aligned: np.ndarray, head_2d: np.ndarray, labelled: np.ndarray,
          size: int) -> np.ndarray:
    """The crop enlarged to `size` with the labels, the aligned prediction and the 2D head."""
    from synth.gallery.page import BONES, SIDE_RGB
    from synth.scene import JOINTS
    k = size / crop.shape[0]
    img = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    idx = {n: i for i, n in enumerate(JOINTS)}

    def pt(p):
        return tuple(int(round((v + 0.5) * k - 0.5) * 16) for v in p)

    for a, b, _ in BONES:
        if labelled[idx[a]] and labelled[idx[b]]:
            cv2.line(img, pt(gt[idx[a]]), pt(gt[idx[b]]), (255, 255, 255), 1, cv2.LINE_AA, 4)
    for a, b, side in BONES:
        cv2.line(img, pt(aligned[idx[a]]), pt(aligned[idx[b]]), SIDE_RGB[side], 2, cv2.LINE_AA, 4)
    for p in head_2d:
        cv2.circle(img, pt(p), 3 * 16, (255, 230, 0), -1, cv2.LINE_AA, 4)
    return img


def write_prediction_page(run: Path, real_spec: str | None = None, out_html: Path | None = None,
                          n_cases: int = 8, device: str = "auto", config: Path | None = None,
                          overrides: list[str] | tuple = ()) -> Path:
    """Write the page (default RUN/gallery/predictions.html) and return its path. `config` /
    `overrides` apply over the run's own configuration (e.g. data_dir=... where LSP is on this
    machine, or train.real.eval_range)."""
    from synth.scene import JOINTS
    from synth.train.checkpoint import resolve_device
    from synth.train.evaluate import predict_items
    from synth.train.metrics import align_2d, pck_2d
    from synth.train.predict import load_run
    from synth.train.real_data import LSP_LABELLED, LspDataset, parse_image_range, split_real_spec
    from synth.train.trainer import real_folder
    run = Path(run)
    dev = resolve_device(device, "--device")
    model, post, ckpt, cfg = load_run(run, dev, config, overrides)
    tc = cfg.train
    if real_spec:
        folder, rng_text = split_real_spec(real_spec)
    else:
        a, b = tc.real.eval_range
        folder, rng_text = real_folder(tc.real, cfg.paths().data), f"{a + 1}-{b}"
    if not Path(folder).is_dir():
        raise InputError(f"{folder}: real-photo folder not found (give --real LSPDIR[:a-b] or data_dir=...)")
    ds = LspDataset(Path(folder), tc.input_size)
    if rng_text:
        ds.indices = parse_image_range(rng_text, len(ds.lsp), str(folder))
    p = predict_items(model, ds, dev, tc.batch_size, 0, "gallery", post)
    gt, pred = p["joints_2d_crop"].astype(np.float64), p["pred"].astype(np.float64)
    labelled = np.broadcast_to(LSP_LABELLED, gt.shape[:2])
    aligned = align_2d(pred[..., :2], gt, labelled)
    rs, lh = JOINTS.index("right_shoulder"), JOINTS.index("left_hip")
    torso = np.linalg.norm(gt[:, rs] - gt[:, lh], axis=-1).clip(min=1e-6)
    err = np.linalg.norm(aligned - gt, axis=-1) / torso[:, None]              # torso lengths
    correct = (err <= 0.2) & labelled
    per_image = correct.sum(1) / labelled.sum(1)
    mean_err = (err * labelled).sum(1) / labelled.sum(1)
    overall = pck_2d(aligned, gt, labelled, joint_names=JOINTS)
    head = pck_2d(p["pred_2d_crop"], gt, labelled, joint_names=JOINTS)
    order = np.lexsort((mean_err, -per_image))                                # best first

    def crop_of(i):
        return ds.crop_rgb(i)

    def card(i, size):
        img = _draw(crop_of(i), gt[i], aligned[i], p["pred_2d_crop"][i], labelled[i], size)
        name = ds.image_path(i).name
        return (f'<figure><img src="{_uri(img)}" width="{size}" height="{size}" alt="{html.escape(name)}">'
                f'{html.escape(name)}: PCK {100 * per_image[i]:.0f} %, mean error {mean_err[i]:.2f} torso</figure>')

    rows = []
    for j, name in enumerate(JOINTS):
        a, h = overall["per_joint"][name], head["per_joint"][name]
        if a is None:
            continue
        rows.append(f"<tr><td>{name}</td><td>{100 * a:.1f}</td><td><span class='bar' style='width:{a * 120:.0f}px'>"
                    f"</span></td><td>{100 * h:.1f}</td></tr>")
    n = min(n_cases, len(order))
    first, last = ds.indices[0] + 1, ds.indices[-1] + 1
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>predictions: {html.escape(run.name)}</title>
<style>{CSS}</style></head><body>
<h1>Predictions of {html.escape(str(run))} (epoch {int(ckpt.get('epoch', 0))}) on {html.escape(str(folder))}, images {first}-{last}</h1>
<p>{tc.backbone}/{tc.head}, input {tc.input_size} px, trained on
{'real 2D labels alone' if tc.data_source == 'real' else 'rendered shards'}
(adaptation {tc.adaptation.method}{' + Jo2D' if tc.adaptation.jo2d else ''}).
{len(ds)} photos; PCK@0.2 (torso = right shoulder to left hip, 14 LSP joints):
<b>{100 * overall['pck']:.1f} %</b> for the 3D prediction projected and aligned by scale and translation,
<b>{100 * head['pck']:.1f} %</b> for the 2D head's joints (no alignment).</p>
<p class="legend"><span>white: labels</span><span style="color:#d33">red: right</span>
<span style="color:#36f">blue: left</span><span style="color:#2a2">green: centre</span> (aligned 3D prediction)
<span style="color:#b90">yellow dots: 2D head</span></p>
<h2>Per-joint PCK@0.2 (%)</h2>
<table><tr><th>joint</th><th>aligned 3D</th><th></th><th>2D head</th></tr>{''.join(rows)}</table>
<h2>Best {n}</h2><div class="grid">{''.join(card(i, CROP_PX) for i in order[:n])}</div>
<h2>Worst {n}</h2><div class="grid">{''.join(card(i, CROP_PX) for i in order[::-1][:n])}</div>
<h2>All {len(ds)} photos, in order</h2><div class="grid">{''.join(card(i, THUMB_PX) for i in range(len(ds)))}</div>
</body></html>"""
    out_html = Path(out_html) if out_html else (run if run.is_dir() else run.parent) / "gallery" / "predictions.html"
    atomic_write_text(out_html, page)
    return out_html
