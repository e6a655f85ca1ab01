"""Knowledge-transfer rows of the data-value benchmark: what the renders' depth images and part
masks are worth to an RGB network on real photos, at one budget for every row.

    PYTHONPATH=. python benchmarks/bench_knowledge_transfer.py DATASET --out OUT \
        [--epochs 8] [--stage1-epochs 8] [--batch 16] [--input-size 96] [--width 16] [--seed 0] \
        [--data ../shared/data] [--real-2d] [key=value ...]

Trains, from scratch, with the same backbone, integral head, input size, batch, RGB-network steps
(`--epochs` × steps per synthetic epoch), augmentation and seed:
  1. synthetic only: the RGB network on the rendered RGB crops with their labels (method none);
  2. knowledge transfer, unlabelled LSP 1-800 (train/knowledge_transfer.yaml's method);
  3. knowledge transfer + synthetic RGB (the same, with the renders' RGB and labels in each step);
  4. (with --real-2d) knowledge transfer + the 2D labels of LSP 1-800.
Rows 2-4 share one stage 1 (depth network, mask network and G, `--stage1-epochs`): it is trained
once and each row's stage 2 resumes from its checkpoint, which is what a fresh run of each would
compute (stage 1 does not depend on the stage-2 options; resume is exact, tested).

A reference row needs no training: the training renders' mean pose predicted for every image
(the floor a network that ignores its input reaches under this protocol).

Reports, per row: MPJPE / PA-MPJPE (mm) on the held-out shards of DATASET and PCK@0.2 on LSP
801-1000 (all 14 joints and visible-flagged only; evaluation only, never trained on), and the
process CPU time of the training; and the stage-1 networks' own metrics on the held-out shards
(the depth network, the mask network, and the chain stage 2 uses: the mask network on G's mask of
the depth network's prediction; G's mask IoUs). Writes OUT/results.json and OUT/results.md;
key=value pairs override the configuration of every row.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from synth.config import load_config  # noqa: E402
from synth.io_utils import atomic_write_text  # noqa: E402
from synth.train.data import train_val_datasets  # noqa: E402
from synth.train.evaluate import evaluate  # noqa: E402
from synth.train.metrics import pck_2d_aligned, pose_metrics, to_millimetres  # noqa: E402
from synth.train.real_data import LSP_LABELLED, LspDataset  # noqa: E402
from synth.train.knowledge_transfer_trainer import (evaluate_teachers, load_knowledge_transfer,  # noqa: E402
                                                    train_knowledge_transfer)
from synth.train.trainer import train  # noqa: E402

ROWS = {
    "synthetic": ("synthetic only (rendered RGB + labels)", ["train.adaptation.method=none"]),
    "kt": ("knowledge transfer, unlabelled LSP 1-800", []),
    "kt_synthetic_rgb": ("knowledge transfer + synthetic RGB",
                         ["train.adaptation.knowledge_transfer.synthetic_rgb=true"]),
    "kt_real_2d": ("knowledge transfer + LSP 1-800 2D labels", ["train.adaptation.knowledge_transfer.real_2d=true"]),
}


def mean_pose_row(train_ds, val_ds, lsp: Path, size: int) -> dict:
    """The training renders' mean normalised pose as the prediction for every held-out render and
    every LSP 801-1000 photo, measured as the networks are (evaluate_synthetic / evaluate_lsp)."""
    mean = torch.stack([train_ds[i]["target"] for i in range(len(train_ds))]).mean(0).numpy()
    val = [val_ds[i] for i in range(len(val_ds))]
    target = torch.stack([v["target"] for v in val]).numpy()
    scale = torch.stack([v["scale"] for v in val]).numpy()
    pred = mean[None].repeat(len(val), 0)
    m = pose_metrics(to_millimetres(pred, scale, val_ds.root_index), to_millimetres(target, scale, val_ds.root_index))
    real = LspDataset(lsp, size, indices=list(range(800, 1000)))
    j2d = torch.stack([real[i]["joints_2d_crop"] for i in range(len(real))]).numpy()
    labelled = LSP_LABELLED[None].repeat(len(real), 0)
    flagged = real.lsp.visible[real.indices] & labelled
    pred_real = mean[None].repeat(len(real), 0)
    return {"label": "mean training pose (no network)", "rgb_steps": 0, "cpu_seconds": 0.0,
            "mpjpe_mm": m["mpjpe_mm"], "pa_mpjpe_mm": m["pa_mpjpe_mm"], "pck150": m["pck150"],
            "lsp_pck02": pck_2d_aligned(pred_real, j2d, labelled)["pck"],
            "lsp_pck02_visible": pck_2d_aligned(pred_real, j2d, flagged)["pck"],
            "val_samples": len(val), "lsp_samples": len(real)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("SYNTH_DATA", REPO.parent / "shared" / "data")),
                    help="data mirror holding lsp/ (LSP 1-800 for adaptation, 801-1000 for PCK)")
    ap.add_argument("--epochs", type=int, default=8, help="RGB-network epochs (stage 2), every row")
    ap.add_argument("--stage1-epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--input-size", type=int, default=96)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real-2d", action="store_true", help="also the row with LSP 1-800's 2D labels")
    ap.add_argument("overrides", nargs="*", help="key=value for every row")
    a = ap.parse_intermixed_args()
    lsp = a.data / "lsp"
    common = [f"seed={a.seed}", f"data_dir={a.data}", "train.head=integral", f"train.width={a.width}",
              f"train.input_size={a.input_size}", f"train.batch_size={a.batch}", f"train.epochs={a.epochs}",
              "train.real.train_range=[0,800]", "train.real.eval_range=[800,1000]", "train.real.log_pck=false",
              "train.tensorboard=false", f"train.adaptation.knowledge_transfer.stage1_epochs={a.stage1_epochs}",
              *a.overrides]
    rows = ["synthetic", "kt", "kt_synthetic_rgb"] + (["kt_real_2d"] if a.real_2d else [])
    a.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"dataset": str(a.dataset), "settings": vars(a) | {"dataset": str(a.dataset), "out": str(a.out),
                                                                         "data": str(a.data)}, "rows": {}}

    # Stage 1 once, shared by the knowledge-transfer rows.
    stage1_dir = a.out / "stage1"
    kt_cfg = load_config(REPO / "train" / "knowledge_transfer.yaml", common)
    t0 = time.process_time()
    train_knowledge_transfer(kt_cfg, a.dataset, stage1_dir, stop_after_epochs=a.stage1_epochs)
    stage1_cpu = time.process_time() - t0
    kt, ckpt = load_knowledge_transfer(stage1_dir / "checkpoint.pt")
    val_ds = train_val_datasets(a.dataset, kt_cfg["train"], maps=True)[1]
    if val_ds is None:
        raise SystemExit(f"{a.dataset}: needs two or more shards (a held-out one)")
    teachers = evaluate_teachers(kt, val_ds, a.batch)
    results["stage1"] = {"cpu_seconds": stage1_cpu, "steps": int(ckpt["step"]), "epochs": a.stage1_epochs,
                         **{k: v for k, v in teachers.items()}}

    plain_train, plain_val = train_val_datasets(a.dataset, kt_cfg["train"])
    results["rows"]["mean_pose"] = mean_pose_row(plain_train, plain_val, lsp, a.input_size)
    for name in rows:
        label, extra = ROWS[name]
        run = a.out / name
        if run.exists():
            shutil.rmtree(run)
        t0 = time.process_time()
        if name == "synthetic":
            cfg = load_config(REPO / "train" / "synthetic.yaml", common + extra)
            summary = train(cfg, a.dataset, run, resume=False)
        else:
            shutil.copytree(stage1_dir, run)
            cfg = load_config(REPO / "train" / "knowledge_transfer.yaml", common + extra)
            summary = train_knowledge_transfer(cfg, a.dataset, run, resume=True)
        cpu = time.process_time() - t0
        ev = evaluate(run / "checkpoint.pt", a.dataset, run / "eval.json", device="cpu",
                      real_dirs=[f"{lsp}:801-1000"], print_table=False)
        real = ev["real"][f"{lsp}:801-1000"]
        steps = int(torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["step"])
        if name != "synthetic":
            steps -= results["stage1"]["steps"]
        results["rows"][name] = {"label": label, "rgb_steps": steps, "cpu_seconds": cpu,
                                 "mpjpe_mm": ev["mpjpe_mm"], "pa_mpjpe_mm": ev["pa_mpjpe_mm"], "pck150": ev["pck150"],
                                 "lsp_pck02": real["pck"], "lsp_pck02_visible": real["pck_visible"],
                                 "val_samples": ev["samples"], "lsp_samples": real["samples"],
                                 "train_summary_val_mpjpe_mm": (summary.get("val") or {}).get("mpjpe_mm")}
        print(f"{name}: MPJPE {ev['mpjpe_mm']:.1f} mm, LSP 801-1000 PCK@0.2 {100 * real['pck']:.1f} % "
              f"({cpu:.0f} s CPU)", file=sys.stderr)

    md = [f"Dataset {a.dataset}: {len(plain_train)} training renders, "
          f"{len(val_ds)} held out; resnet18 width {a.width}, integral head, {a.input_size}-px crops, batch {a.batch}, "
          f"seed {a.seed}; every RGB network {a.epochs} epochs; stage 1 {a.stage1_epochs} epochs "
          f"({results['stage1']['steps']} steps, {stage1_cpu:.0f} s CPU, shared by the knowledge-transfer rows).",
          "", "| row | RGB steps | MPJPE (mm) | PA-MPJPE (mm) | LSP 801-1000 PCK@0.2 (%) | PCK@0.2 visible (%) "
          "| train CPU (s) |", "|---|---|---|---|---|---|---|"]
    for name in ["mean_pose"] + rows:
        r = results["rows"][name]
        md.append(f"| {r['label']} | {r['rgb_steps']} | {r['mpjpe_mm']:.1f} | {r['pa_mpjpe_mm']:.1f} | "
                  f"{100 * r['lsp_pck02']:.1f} | {100 * r['lsp_pck02_visible']:.1f} | {r['cpu_seconds']:.0f} |")
    s1 = results["stage1"]
    md += ["", "Stage-1 networks on the held-out shards:", "",
           "| network | input | MPJPE (mm) | PA-MPJPE (mm) | 3DPCK@150 (%) |", "|---|---|---|---|---|"]
    for key, label, inp in (("depth", "depth network", "rendered depth"),
                            ("mask", "mask network", "rendered part mask"),
                            ("chain", "mask network on G's mask", "depth network's 2D + depths -> G")):
        m = s1[key]
        md.append(f"| {label} | {inp} | {m['mpjpe_mm']:.1f} | {m['pa_mpjpe_mm']:.1f} | {100 * m['pck150']:.1f} |")
    g, gl = s1["segmenter"], s1["segmenter_from_labels"]
    md += ["", f"G's mask vs the rendered one (argmax): from the depth network's prediction person IoU "
               f"{g['fg_iou']:.3f}, mIoU {g['miou']:.3f} (parts {g['part_miou']:.3f}); from the labelled 2D + "
               f"depths person IoU {gl['fg_iou']:.3f}, mIoU {gl['miou']:.3f} (parts {gl['part_miou']:.3f})."]
    text = "\n".join(md)
    print(text)
    atomic_write_text(a.out / "results.md", text + "\n")
    atomic_write_text(a.out / "results.json", json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
