"""Training and evaluation of the 3D pose regressor on a rendered dataset.

`train` is deterministic for a given config and dataset on CPU: the model is initialised from
`seed`, and each epoch's sample order comes from a generator seeded by (seed, epoch) alone, so
training N epochs in one go or stopping and resuming from a checkpoint gives the same weights.
"""
from __future__ import annotations

import copy
import csv
import io
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from synth.config import ConfigError, dump
from synth.io_utils import InputError, atomic_write_bytes, atomic_write_json, atomic_write_text
from synth.train.data import (PoseShardDataset, list_shards, read_dataset_meta, split_shards,
                              train_val_datasets)
from synth.train.metrics import pose_metrics, to_millimetres
from synth.train.models import build_model, count_parameters

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.csv"
CONFIG_NAME = "config.yaml"
CHECKPOINT_SCHEMA = "synth-train/1"
LOG_FIELDS = ["epoch", "train_loss", "val_mpjpe_mm", "val_pa_mpjpe_mm", "val_pck150", "val_auc",
              "lr", "epoch_seconds", "train_samples_per_s"]
# Settings a resumed run must share with its checkpoint: they define the model and its targets.
RESUME_MUST_MATCH = ("backbone", "width", "input_size", "skeleton_length")
LOSSES = {"l1": torch.nn.functional.l1_loss, "l2": torch.nn.functional.mse_loss}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'train.device' = 'cuda' but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _rng_state() -> dict:
    # Stored as plain types and tensors so the checkpoint loads with torch.load(weights_only=True).
    np_state = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file
        raise InputError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("schema") != CHECKPOINT_SCHEMA:
        raise InputError(f"{path}: not a {CHECKPOINT_SCHEMA} checkpoint")
    return ckpt


def _save_checkpoint(path: Path, model, optimizer, epoch: int, cfg: dict, joint_names: list[str]) -> None:
    buf = io.BytesIO()
    torch.save({"schema": CHECKPOINT_SCHEMA, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "rng": _rng_state(), "config": cfg,
                "joint_names": joint_names}, buf)
    atomic_write_bytes(path, buf.getvalue())


def _read_log(path: Path, upto_epoch: int) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit() and int(r["epoch"]) <= upto_epoch]


def _write_log(path: Path, rows: list[dict]) -> None:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=LOG_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, out.getvalue())


def _loader(ds, batch_size: int, workers: int, device: torch.device, sampler=None, drop_last=False):
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                      pin_memory=device.type == "cuda", drop_last=drop_last,
                      persistent_workers=False)


@torch.no_grad()
def predict(model, ds: PoseShardDataset, device: torch.device, batch_size: int, workers: int = 0,
            desc: str = "eval") -> tuple[np.ndarray, np.ndarray]:
    """(predictions, ground truths) as root-relative millimetres (N, J, 3); both are scaled by
    the ground truth's normalisation factor (see synth.train.metrics)."""
    model.eval()
    preds, gts = [], []
    for batch in tqdm(_loader(ds, batch_size, workers, device), desc=desc, leave=False, disable=None):
        out = model(batch["image"].to(device, non_blocking=True)).float().cpu()
        preds.append(to_millimetres(out, batch["scale"], ds.root_index))
        gts.append(to_millimetres(batch["target"], batch["scale"], ds.root_index))
    return np.concatenate(preds), np.concatenate(gts)


# Gradients are switched on explicitly: another stage in the same process may have turned them
# off globally (torch.set_grad_enabled(False)).
@torch.enable_grad()
def train(cfg: dict, data_dir: Path, out_dir: Path, resume: bool = True) -> dict:
    """Train the configured network on the training shards of `data_dir`, writing
    out_dir/{checkpoint.pt, log.csv, config.yaml}; returns a summary with the last validation
    metrics. With `resume` and an existing checkpoint, training continues after its epoch."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    cfg = copy.deepcopy(cfg)
    tc, seed = cfg["train"], int(cfg["seed"])
    loss_name = str(tc.get("loss", "l1")).lower()
    if loss_name not in LOSSES:
        raise ConfigError(f"config key 'train.loss' = {loss_name!r} must be one of {sorted(LOSSES)}")
    loss_fn = LOSSES[loss_name]
    train_ds, val_ds = train_val_datasets(data_dir, tc)
    device = resolve_device(tc["device"])
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out_dir / CHECKPOINT_NAME, out_dir / LOG_NAME

    seed_everything(seed)
    model = build_model(tc, len(train_ds.joint_names)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(tc["lr"]),
                                 weight_decay=float(tc["weight_decay"]))
    start_epoch, rows = 0, []
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        old = ckpt["config"]
        for key in RESUME_MUST_MATCH:
            if old["train"][key] != tc[key]:
                raise ConfigError(f"{ckpt_path}: config key 'train.{key}' = {tc[key]!r} differs from the "
                                  f"checkpoint's {old['train'][key]!r}; use a new output folder or no resume")
        if old["seed"] != seed:
            raise ConfigError(f"{ckpt_path}: config key 'seed' = {seed} differs from the checkpoint's {old['seed']}")
        if ckpt["joint_names"] != train_ds.joint_names:
            raise InputError(f"{data_dir / 'dataset.json'}: joint order differs from the checkpoint's")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        _set_rng_state(ckpt["rng"])
        start_epoch = int(ckpt["epoch"])
        rows = _read_log(log_path, start_epoch)
    dump(cfg, out_dir / CONFIG_NAME)

    epochs, bs, workers = int(tc["epochs"]), int(tc["batch_size"]), int(tc["workers"])
    every = max(int(tc.get("checkpoint_every", 1)), 1)
    print(f"train: {tc['backbone']} width {tc['width']} ({count_parameters(model) / 1e6:.2f} M params) "
          f"on {device}; {len(train_ds)} train / {len(val_ds) if val_ds else 0} val samples; "
          f"epochs {start_epoch + 1}..{epochs}", file=sys.stderr)
    val_metrics = None
    train_loss = float("nan")
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        # The order depends on (seed, epoch) only, so a resumed run replays it exactly.
        order = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        # A last batch of one sample would break BatchNorm's batch statistics; drop it.
        drop_last = len(train_ds) % bs == 1 and len(train_ds) > 1
        loader = _loader(train_ds, bs, workers, device, RandomSampler(train_ds, generator=order), drop_last)
        model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=None)
        for batch in bar:
            images = batch["image"].to(device, non_blocking=True)
            target = batch["target"].to(device, non_blocking=True)
            loss = loss_fn(model(images), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(images)
            count += len(images)
            bar.set_postfix(loss=f"{total / count:.4f}")
        train_loss = total / max(count, 1)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training diverged at epoch {epoch + 1} (loss {train_loss}); lower train.lr")
        seconds = time.perf_counter() - t0
        val_metrics = None
        if val_ds is not None:
            val_metrics = pose_metrics(*predict(model, val_ds, device, bs, workers, "val"), val_ds.joint_names)
        rows.append({"epoch": epoch + 1, "train_loss": f"{train_loss:.6f}",
                     "val_mpjpe_mm": f"{val_metrics['mpjpe_mm']:.2f}" if val_metrics else "",
                     "val_pa_mpjpe_mm": f"{val_metrics['pa_mpjpe_mm']:.2f}" if val_metrics else "",
                     "val_pck150": f"{val_metrics['pck150']:.4f}" if val_metrics else "",
                     "val_auc": f"{val_metrics['auc']:.4f}" if val_metrics else "",
                     "lr": optimizer.param_groups[0]["lr"], "epoch_seconds": f"{seconds:.2f}",
                     "train_samples_per_s": f"{count / seconds:.1f}"})
        _write_log(log_path, rows)
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            _save_checkpoint(ckpt_path, model, optimizer, epoch + 1, cfg, train_ds.joint_names)
        val_txt = f", val MPJPE {val_metrics['mpjpe_mm']:.1f} mm" if val_metrics else ""
        print(f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}{val_txt} ({seconds:.1f} s)",
              file=sys.stderr)
    if start_epoch >= epochs and not ckpt_path.exists():
        _save_checkpoint(ckpt_path, model, optimizer, start_epoch, cfg, train_ds.joint_names)
    return {"epochs_completed": max(epochs, start_epoch), "resumed_from_epoch": start_epoch,
            "train_loss": train_loss, "val": val_metrics, "device": str(device),
            "train_samples": len(train_ds), "val_samples": len(val_ds) if val_ds else 0,
            "checkpoint": str(ckpt_path), "log": str(log_path)}


def format_table(result: dict) -> str:
    lines = [f"{'metric':<22}{'value':>10}",
             f"{'MPJPE (mm)':<22}{result['mpjpe_mm']:>10.1f}",
             f"{'PA-MPJPE (mm)':<22}{result['pa_mpjpe_mm']:>10.1f}",
             f"{'3DPCK@150 (%)':<22}{100 * result['pck150']:>10.1f}",
             f"{'AUC (%)':<22}{100 * result['auc']:>10.1f}",
             f"{'samples':<22}{result['samples']:>10d}",
             "", f"{'joint':<22}{'MPJPE (mm)':>10}"]
    lines += [f"{name:<22}{v:>10.1f}" for name, v in result["per_joint_mpjpe_mm"].items()]
    return "\n".join(lines)


def evaluate(checkpoint: Path, data_dir: Path, out_json: Path | None = None, device: str = "auto") -> dict:
    """Metrics of a checkpoint on the held-out shards of `data_dir` (the same whole-shard split
    as training). A dataset of a single shard has none held out: it is evaluated whole and the
    result's "split" says so. Prints a table; writes `out_json` atomically when given.
    `device` is "auto", "cpu" or "cuda" (not the training config's: a checkpoint trained on a
    GPU node is often evaluated elsewhere)."""
    checkpoint, data_dir = Path(checkpoint), Path(data_dir)
    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    tc = cfg["train"]
    meta_joints = [str(n) for n in read_dataset_meta(data_dir)["joints"]]
    if meta_joints != ckpt["joint_names"]:
        raise InputError(f"{data_dir / 'dataset.json'}: joint order {meta_joints} differs from the "
                         f"checkpoint's {ckpt['joint_names']}")
    shards = list_shards(data_dir)
    _, val_shards = split_shards(shards, float(tc["val_fraction"]))
    split = "val"
    if not val_shards:
        val_shards, split = shards, "all (a single shard: nothing held out)"
        print(f"evaluate: {data_dir} has one shard; evaluating on it although it was trained on",
              file=sys.stderr)
    ds = PoseShardDataset(data_dir, val_shards, int(tc["input_size"]), float(tc["skeleton_length"]))
    device = resolve_device(device)
    model = build_model(tc, len(ds.joint_names)).to(device)
    model.load_state_dict(ckpt["model"])
    result = pose_metrics(*predict(model, ds, device, int(tc["batch_size"]), int(tc["workers"])),
                          ds.joint_names)
    result.update({"checkpoint": str(checkpoint), "epoch": int(ckpt["epoch"]), "data_dir": str(data_dir),
                   "split": split, "shards": [s.name for s in val_shards],
                   "backbone": tc["backbone"], "width": tc["width"], "input_size": tc["input_size"]})
    print(format_table(result))
    if out_json is not None:
        atomic_write_json(Path(out_json), result)
    return result
