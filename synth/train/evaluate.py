"""Evaluation of a trained checkpoint: 3D metrics on held-out synthetic shards and PCK@0.2 on real
LSP-format photos.

- Synthetic (synth.train.metrics): MPJPE, PA-MPJPE, 3DPCK@150 mm and AUC on the held-out shards
  of a rendered dataset (the same whole-shard split as training; a one-shard dataset is evaluated
  whole, and the result's "split" says so).
- Real (synth.train.metrics.pck_2d_aligned): the predicted 3D pose of each LSP crop is projected
  orthographically and aligned to the 2D labels by the best scale and translation; a joint is
  correct within 0.2 × the torso size (right shoulder to left hip). The LSP protocol counts all 14
  annotated joints (LSP gives positions for occluded joints too); "pck_visible" counts only
  the joints flagged visible. The pelvis is not an LSP joint and is not counted.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from synth.config import TrainConfig, load_config
from synth.io_utils import InputError, atomic_write_json
from synth.train.adaptation import spa_head_from_checkpoint
from synth.train.checkpoint import load_checkpoint, resolve_device
from synth.train.data import PoseShardDataset, list_shards, read_dataset_meta, split_shards
from synth.train.metrics import pck_2d, pck_2d_aligned, pose_metrics, prediction_spread, to_millimetres
from synth.train.models import build_model, crop_pixels_from_normalised
from synth.train.real_data import LSP_LABELLED, LspDataset, parse_image_range, split_real_spec


@torch.no_grad()
def predict_items(model, ds, device: torch.device, batch_size: int, workers: int = 0,
                  desc: str = "eval", post=None) -> dict[str, np.ndarray]:
    """Normalised 3D predictions `pred` (N, J, 3) of a dataset in the batch interface, the 2D
    head's `pred_2d_crop` (N, J, 2, crop pixels), with the items' `target`, `scale`,
    `joints_2d_crop` and `visible_2d`, as numpy arrays. `post` (e.g. an SPA head) is applied to
    the network's 3D output."""
    model.eval()
    out: dict[str, list] = {"pred": [], "pred_2d_crop": [], "target": [], "scale": [], "joints_2d_crop": [],
                            "visible_2d": []}
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    for batch in tqdm(loader, desc=desc, leave=False, disable=None):
        images = batch["image"].to(device, non_blocking=True)
        res = model.predict(images)
        pred = res.joints_3d.float()
        out["pred"].append((post(pred) if post is not None else pred).cpu().numpy())
        out["pred_2d_crop"].append(crop_pixels_from_normalised(res.joints_2d.float(), images.shape[-1]).cpu().numpy())
        for k in ("target", "scale", "joints_2d_crop", "visible_2d"):
            out[k].append(batch[k].numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def evaluate_synthetic(model, data_dir: Path, tc: TrainConfig, joint_names: list[str], device: torch.device,
                       post=None) -> dict:
    data_dir = Path(data_dir)
    meta_joints = [str(n) for n in read_dataset_meta(data_dir)["joints"]]
    if meta_joints != list(joint_names):
        raise InputError(f"{data_dir / 'dataset.json'}: joint order {meta_joints} differs from the "
                         f"checkpoint's {list(joint_names)}")
    shards = list_shards(data_dir)
    _, val_shards = split_shards(shards, tc.val_fraction)
    split = "val"
    if not val_shards:
        val_shards, split = shards, "all (a single shard: nothing held out)"
        print(f"evaluate: {data_dir} has one shard; evaluating on it although it was trained on",
              file=sys.stderr)
    ds = PoseShardDataset(data_dir, val_shards, tc.input_size, tc.skeleton_length)
    p = predict_items(model, ds, device, tc.batch_size, tc.workers, "synthetic", post)
    result = pose_metrics(to_millimetres(p["pred"], p["scale"], ds.root_index),
                          to_millimetres(p["target"], p["scale"], ds.root_index), ds.joint_names)
    result.update({"data_dir": str(data_dir), "split": split, "shards": [s.name for s in val_shards]})
    return result


def evaluate_lsp(model, spec: str, tc: TrainConfig, device: torch.device, post=None) -> dict:
    """PCK@0.2 on an LSP-format folder, 'FOLDER' or 'FOLDER:a-b' (1-based image numbers)."""
    folder, rng_text = split_real_spec(spec)
    ds = LspDataset(folder, tc.input_size)
    if rng_text:
        ds.indices = parse_image_range(rng_text, len(ds.lsp), str(folder))
    p = predict_items(model, ds, device, tc.batch_size, tc.workers, "real", post)
    labelled = np.broadcast_to(LSP_LABELLED, p["pred"].shape[:2])
    flagged = ds.lsp.visible[ds.indices] & labelled
    res = pck_2d_aligned(p["pred"], p["joints_2d_crop"], labelled, joint_names=ds.joint_names)
    vis = pck_2d_aligned(p["pred"], p["joints_2d_crop"], flagged, joint_names=ds.joint_names)
    head = pck_2d(p["pred_2d_crop"], p["joints_2d_crop"], labelled, joint_names=ds.joint_names)
    per_joint = {k: v for k, v in res["per_joint"].items() if v is not None}
    first, last = ds.indices[0] + 1, ds.indices[-1] + 1
    return {"pck": res["pck"], "pck_visible": vis["pck"], "per_joint": per_joint,
            "pck_2d_head": head["pck"],
            # how much the 2D head's joints vary between photos, as a share of the labels' (about 0:
            # one pose for every photo)
            "spread_2d_head": prediction_spread(p["pred_2d_crop"], p["joints_2d_crop"]),
            "per_joint_2d_head": {k: v for k, v in head["per_joint"].items() if v is not None},
            "samples": res["samples"], "threshold": res["threshold"], "folder": str(folder),
            "images": f"{first}-{last}" if len(ds.indices) == last - first + 1 else f"{len(ds.indices)} selected"}


def format_table(result: dict) -> str:
    """The printed report: synthetic metrics and per-joint MPJPE, then per-joint PCK per folder."""
    lines = []
    if result.get("mpjpe_mm") is not None:
        lines += [f"synthetic held-out ({result['samples']} samples, split {result['split']})",
                  f"{'metric':<22}{'value':>10}",
                  f"{'MPJPE (mm)':<22}{result['mpjpe_mm']:>10.1f}",
                  f"{'PA-MPJPE (mm)':<22}{result['pa_mpjpe_mm']:>10.1f}",
                  f"{'3DPCK@150 (%)':<22}{100 * result['pck150']:>10.1f}",
                  f"{'AUC (%)':<22}{100 * result['auc']:>10.1f}",
                  f"{'spread (x labels)':<22}{result.get('spread', float('nan')):>10.2f}",
                  f"{'samples':<22}{result['samples']:>10d}",
                  "", f"{'joint':<22}{'MPJPE (mm)':>10}"]
        lines += [f"{name:<22}{v:>10.1f}" for name, v in result["per_joint_mpjpe_mm"].items()]
    for spec, r in (result.get("real") or {}).items():
        if lines:
            lines.append("")
        lines += [f"real {spec} ({r['samples']} images {r['images']}): PCK@{r['threshold']:g} "
                  f"(torso-normalised, after scale+translation alignment)",
                  f"{'joint':<22}{'PCK (%)':>10}"]
        lines += [f"{name:<22}{100 * v:>10.1f}" for name, v in r["per_joint"].items()]
        lines += [f"{'all 14 joints':<22}{100 * r['pck']:>10.1f}",
                  f"{'2D head, no alignment':<22}{100 * r['pck_2d_head']:>10.1f}",
                  f"{'2D head spread':<22}{r.get('spread_2d_head', float('nan')):>10.2f}",
                  f"{'visible-flagged only':<22}{100 * r['pck_visible']:>10.1f}"
                  if not math.isnan(r["pck_visible"]) else f"{'visible-flagged only':<22}{'-':>10}"]
    return "\n".join(lines)


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _spa_head(ckpt: dict):
    return spa_head_from_checkpoint(ckpt) if ckpt.get("spa") else None


def evaluate(checkpoint: Path, data_dir: Path | None = None, out_json: Path | None = None,
             device: str = "auto", real_dirs: list[str] | tuple = (), print_table: bool = True,
             config: Path | None = None, overrides: list[str] | tuple = ()) -> dict:
    """Metrics of a checkpoint: on the held-out shards of `data_dir` (3D metrics at the top
    level of the result, as before) and on each LSP-format folder of `real_dirs` ('FOLDER' or
    'FOLDER:a-b'; result["real"][spec]). Prints a table; writes `out_json` atomically when given.
    `device` is "auto", "cpu" or "cuda" (not the training config's: a checkpoint trained on a
    GPU node is often evaluated elsewhere). The `train` settings are the checkpoint's, with the
    file `config` and the key=value `overrides` over them (e.g. train.batch_size=8)."""
    if data_dir is None and not real_dirs:
        raise InputError(f"{checkpoint}: nothing to evaluate on (give a dataset and/or real folders)")
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    tc = load_config(config, overrides, base=ckpt["config"]).train
    joint_names = list(ckpt["joint_names"])
    dev = resolve_device(device, "evaluation device")
    model = build_model(tc, len(joint_names)).to(dev)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise InputError(f"{checkpoint}: model weights do not fit the model its config describes "
                         f"({str(e).splitlines()[0]})") from None
    # A run trained with skeletal pose adaptation stores its SPA head: the run's final model is
    # the network followed by that head.
    post = _spa_head(ckpt)
    post = post.to(dev) if post is not None else None
    result: dict = {}
    if data_dir is not None:
        result.update(evaluate_synthetic(model, Path(data_dir), tc, joint_names, dev, post))
    if real_dirs:
        result["real"] = {str(spec): evaluate_lsp(model, str(spec), tc, dev, post) for spec in real_dirs}
    result["spa_applied"] = post is not None
    result.update({"checkpoint": str(checkpoint), "epoch": int(ckpt.get("epoch", 0)),
                   "backbone": tc.backbone, "head": tc.head, "width": tc.width, "input_size": tc.input_size})
    if print_table:
        print(format_table(result))
    if out_json is not None:
        atomic_write_json(Path(out_json), _json_safe(result))
    return result
