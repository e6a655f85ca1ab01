"""What the rendered data is worth on real photos: one table of PCK@0.2 on LSP 801-1000.

    python benchmarks/bench_data_value.py [--tiny] [--out out/data_value] [--data-dir ../shared/data]
        [--sizes 250,500,1000] [--steps 600] [--batch 32] [--input-size 128] [--threads 2] ...

Every row trains the same network (ImageNet-pretrained EfficientNet-Lite0, regression head; the
last three rows the integral head) with the same budget (--steps optimisation steps of --batch images, the same seed, input size, learning
rate and schedule) and is evaluated on LSP images 801-1000, which no row trains on:

| row | training data |
| --- | --- |
| mean pose | none: the mean normalised pose of the largest synthetic set, predicted for every photo |
| synthetic N | N renders (--sizes), CMU poses, garment-photo textures, no appearance augmentation |
| textures few / many | --variant-size renders dressed from a `synth dress` library of --textures-few / --textures-many bodies |
| poses cmu,lsp,prior | --variant-size renders posed from MoCap + lifted LSP + the pose prior |
| appearance on | the synthetic --variant-size set with train.appearance on |
| real only | the 2D labels of LSP 1-800 alone (train.data_source=real) |
| synthetic + real (Jo2D) | the synthetic --variant-size set + LSP 1-800 2D labels (Jo2D) |
| synthetic, integral head | the synthetic --variant-size set, integral head (the knowledge-transfer network) |
| knowledge transfer | stage 1 on the --variant-size set's depth and part maps, then LSP 1-800 WITHOUT labels |
| knowledge transfer + synthetic RGB | the same, with the --variant-size set's RGB crops and labels in each step |

More rows: `--render-row NAME:KEY=VALUE,...` (--variant-size renders with those render overrides)
and `--row-dataset NAME:FOLDER` (a dataset rendered before, e.g. by a version whose configuration
today's keys no longer name).

The knowledge-transfer rows (integral head, as the method needs; train/knowledge_transfer.yaml)
give their RGB network the same budget (--steps stage-2 steps of --batch photos, + --batch renders
with synthetic RGB) from the same ImageNet start; their depth and mask networks and G are trained
first, once for both rows (--kt-stage1-epochs over the --variant-size set, kept in OUT/runs like
the rows' results; each row's stage 2 resumes from that checkpoint, which is what a fresh run
computes: stage 1 does not depend on the stage-2 options, and resume is exact), and that stage's
cost is reported beside the table with the depth / mask networks' own MPJPE on the held-out shard
and G's mask IoUs.

`spread val / LSP`: how much a row's predictions vary between samples, as a share of how much
the labels do (synth.train.metrics.prediction_spread): its 3D joints on the held-out shard, its
2D head's joints on the LSP photos. About 0 means the network predicts one pose for every image,
and its PCK is then a mean pose's.

PCK@0.2 is reported two ways: `aligned 3D` (the 3D prediction projected orthographically and
aligned to the labels by scale and translation, as `synth eval --real`; the mean-pose row uses the
same alignment) and `2D head` (the network's own 2D joints, no alignment). The synthetic rows
also give MPJPE on one common held-out shard of the base dataset.

Datasets are rendered with `synth render` (pose files with `synth sample-poses`, texture
libraries with `synth dress`), once: each lives in a folder under OUT/cache named by a digest of
its dataset identity (synth.dataset.identity: the render-relevant keys, and the fingerprints of
the input files, pose file and texture library) and is reused by later runs (and `synth render`
resumes a partial one). A cached dataset rendered by another software version (another git
commit) is reused too (`--allow-version-mismatch`); each row's JSON names the software that
rendered its data. Smaller synthetic sets are the first shards of the largest (a shard depends
only on the configuration, the seed and its index). The table (markdown) is printed and written to
OUT/data_value.md with OUT/data_value.json, including each row's budget: steps, batch, images
seen, wall-clock and process CPU seconds, torch threads. `--tiny` runs the whole procedure at a
toy scale in a few minutes (its numbers mean nothing; it proves the script works).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TINY = dict(sizes="8,12", samples_per_shard=4, variant_size=8, image_size=96, render_samples=4, poses_n=60,
            textures_few=2, textures_many=4, steps=6, batch=4, input_size=64, eval_range="801-840",
            kt_stage1_epochs=1)
KT = "knowledge_transfer"


def run(cmd: list[str], log: Path) -> None:
    """A `synth` subcommand in a subprocess (this checkout's package), output to `log`."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.run([sys.executable, "-m", "synth.cli", *cmd], stdout=f, stderr=subprocess.STDOUT,
                            env=env).returncode
    if rc != 0:
        raise SystemExit(f"bench_data_value: `synth {cmd[0]}` failed (exit {rc}); see {log}")


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


class Cache:
    """Pose files, texture libraries and rendered datasets under OUT/cache, by configuration."""

    def __init__(self, out: Path, data_dir: Path, a):
        self.root = out / "cache"
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir, self.a = data_dir, a
        self.log = out / "commands.log"

    def common(self) -> list[str]:
        return [f"data_dir={self.data_dir}", f"seed={self.a.seed}"]

    def poses(self, sources: str) -> Path:
        path = self.root / f"poses-{sources.replace(',', '+')}-{self.a.poses_n}-{digest(self.common())}.npz"
        if not path.exists():
            run(["sample-poses", "--sources", sources, "--n", str(self.a.poses_n), "--out", str(path), "--quiet",
                 *self.common()], self.log)
        return path

    def library(self, n: int) -> Path:
        path = self.root / f"textures-{n}-{digest(self.common())}"
        if not (path / "index.json").exists():
            run(["dress", "--n", str(n), "--out", str(path), "--quiet", *self.common()], self.log)
        return path

    def render(self, shards: int, overrides: list[str]) -> Path:
        a = self.a
        ov = self.common() + [f"render.image_size=[{a.image_size},{a.image_size}]", f"render.samples={a.render_samples}",
                              *overrides]
        # By what `synth render` itself compares before adding to an output: the dataset identity
        # and the input files' fingerprints (the pose file's and texture library's included).
        from synth.config import load_config
        from synth.dataset.identity import dataset_identity, input_fingerprints
        resolved = load_config(None, ov + [f"dataset.shards={shards}",
                                           f"dataset.samples_per_shard={a.samples_per_shard}"])
        key = {"identity": dataset_identity(resolved.model_dump(mode="json")), "inputs": input_fingerprints(resolved)}
        path = self.root / f"render-{digest(key)}"
        run(["render", "--out", str(path), "--shards", str(shards), "--samples-per-shard", str(a.samples_per_shard),
             "--quiet", "--workers", str(a.render_workers), "--allow-version-mismatch", *ov], self.log)
        return path


def view(out: Path, name: str, dataset: Path, n_shards: int, val_shard: Path) -> Path:
    """A dataset folder of `dataset`'s first n_shards shards (links) plus `val_shard` as the last,
    which the trainer holds out (one shard: val_fraction below 1 / (n + 1) holds out exactly one)."""
    folder = out / "views" / name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "shards").mkdir(parents=True)
    shutil.copy(dataset / "dataset.json", folder / "dataset.json")
    shards = sorted((dataset / "shards").glob("shard-*.tar"))
    if len(shards) < n_shards:
        raise SystemExit(f"bench_data_value: {dataset} has {len(shards)} shards, {n_shards} needed")
    for i, s in enumerate(shards[:n_shards]):
        (folder / "shards" / f"shard-{i:06d}.tar").symlink_to(s.resolve())
    (folder / "shards" / f"shard-{n_shards:06d}.tar").symlink_to(val_shard.resolve())
    return folder


def mean_pose_pck(dataset: Path, lsp: Path, eval_range: str) -> float:
    """PCK@0.2 of the training set's mean normalised pose as every photo's prediction (the
    alignment removes scale and translation, so the labels' own pixels serve)."""
    import numpy as np
    from synth.train.data import PoseShardDataset, list_shards, normalise_pose
    from synth.train.metrics import pck_2d_aligned
    from synth.train.real_data import LSP_LABELLED, LspDataset, parse_image_range
    ds = PoseShardDataset(dataset, list_shards(dataset)[:-1], 64)
    names = ds.joint_names
    poses = [normalise_pose(np.asarray(ds.labels(i)["joints_3d_cam"]).reshape(15, 3), names)[0] for i in range(len(ds))]
    mean = np.mean(poses, axis=0)
    real = LspDataset(lsp, 64)
    idx = parse_image_range(eval_range, len(real.lsp), str(lsp))
    gt = real.lsp.joints_2d[idx].astype(np.float64)
    labelled = np.broadcast_to(LSP_LABELLED, gt.shape[:2])
    return float(pck_2d_aligned(np.broadcast_to(mean, (len(idx), 15, 3)), gt, labelled)["pck"])


def rendered_by(data: Path | None) -> dict | None:
    """The software that rendered a dataset (its dataset.json)."""
    if data is None:
        return None
    return json.loads((Path(data) / "dataset.json").read_text()).get("software")


BUDGET_KEYS = ("steps", "batch", "input_size", "lr", "seed", "eval_range")


def row_key(name: str, data: Path | None, a, extra: list[str]) -> str:
    """What a row's figures depend on: its name, training overrides, data (the cached dataset
    folder, itself named by its identity) and the budget. Wall-clock settings (threads, workers)
    are not part of it."""
    # the cached datasets (folders named by their identity) and shards a view links to
    linked = None if data is None else sorted(
        f"{Path(os.path.realpath(t)).parent.parent.name}/{Path(os.path.realpath(t)).name}"
        for t in (data / "shards").glob("*.tar"))
    return digest({"row": name, "extra": extra, "data": linked,
                   "budget": {k: getattr(a, k) for k in BUDGET_KEYS}})


def _file_name(name: str) -> str:
    return name.replace(' ', '_').replace(',', '+').replace('/', '_')


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def cached_row(name: str, out: Path, data: Path | None, a, data_dir: Path, extra: list[str],
               recipe: str = "synthetic") -> dict:
    """A row's result from OUT/rows when the same row was trained before with the same data and
    budget (unless --retrain), else trained now and stored there."""
    folder = out / "rows"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_file_name(name)}-{row_key(name, data, a, extra)}.json"
    if path.exists() and not a.retrain:
        return {**json.loads(path.read_text()), "reused": True}
    result = train_row(name, out, data, a, data_dir, extra, recipe)
    _write_json(path, result)
    return result


def row_config(a, data_dir: Path, extra: list[str], recipe: str = "synthetic"):
    """A row's configuration: the recipe with the benchmark's common budget and settings."""
    from synth.config import load_config
    overrides = [f"data_dir={data_dir}", f"seed={a.seed}", f"train.steps={a.steps}", f"train.batch_size={a.batch}",
                 f"train.input_size={a.input_size}", f"train.threads={a.threads}", f"train.workers={a.workers}",
                 f"train.lr={a.lr}", "train.real.log_pck=false", "train.tensorboard=false",
                 "train.appearance.enabled=false", "train.val_fraction=0.01", "train.device=cpu",
                 "train.checkpoint_every=1000000", *extra]
    return load_config(REPO / "train" / f"{recipe}.yaml", overrides)


def kt_stage1_extra(a) -> list[str]:
    return [f"train.adaptation.knowledge_transfer.stage1_epochs={a.kt_stage1_epochs}"]


def kt_stage1(out: Path, data: Path, a, data_dir: Path) -> tuple[Path, dict]:
    """The knowledge-transfer stage 1 the rows share, trained once per data and budget (kept in
    OUT/runs with its figures in OUT/rows; --retrain trains it again): (its run folder, its
    figures: steps, time, the depth / mask networks' and the chain's held-out metrics, G's mask
    IoUs)."""
    from synth.train.knowledge_transfer_trainer import train_knowledge_transfer
    extra = kt_stage1_extra(a)
    key = row_key("knowledge transfer stage 1", data, a, extra)
    run_dir = out / "runs" / f"knowledge_transfer_stage1-{key}"
    (out / "rows").mkdir(parents=True, exist_ok=True)
    path = out / "rows" / f"knowledge_transfer_stage1-{key}.json"
    if path.exists() and (run_dir / "checkpoint.pt").exists() and not a.retrain:
        return run_dir, {**json.loads(path.read_text()), "reused": True}
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cfg = row_config(a, data_dir, extra, KT)
    epochs = cfg.train.adaptation.knowledge_transfer.stage1_epochs
    t0, c0 = time.perf_counter(), time.process_time()
    summary = train_knowledge_transfer(cfg.train, data, run_dir, seed=cfg.seed, paths=cfg.paths(), record=cfg,
                                       resume=False, stop_after_epochs=epochs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    figures = {"epochs": summary["stage1_epochs_completed"], "steps": summary["stage1_steps"], "batch": a.batch,
               "wall_s": seconds, "cpu_s": cpu, "teachers": summary["teachers_val"], "run": str(run_dir)}
    _write_json(path, figures)
    return run_dir, figures


def train_row(name: str, out: Path, data: Path | None, a, data_dir: Path, extra: list[str],
              recipe: str = "synthetic") -> dict:
    """Train and evaluate one row (`recipe`: the train/ recipe it starts from). A knowledge-transfer
    row resumes from the shared stage 1 (kt_stage1)."""
    import torch
    from synth.train import evaluate, train_from_config
    run_dir = out / "runs" / _file_name(name)
    cfg = row_config(a, data_dir, extra, recipe)
    ad = cfg.train.adaptation
    kt = ad.method == KT
    stage1 = None
    if run_dir.exists():
        shutil.rmtree(run_dir)
    if kt:
        stage1_dir, stage1 = kt_stage1(out, data, a, data_dir)
        shutil.copytree(stage1_dir, run_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = train_from_config(cfg, data, run_dir, resume=kt)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    result = evaluate(run_dir / "checkpoint.pt", None, run_dir / "eval.json", device="cpu",
                      real_dirs=[f"{data_dir / 'lsp'}:{a.eval_range}"], print_table=False)
    real = next(iter(result["real"].values()))
    if kt:
        # one batch of unlabelled photos per step, and one of renders with synthetic_rgb
        batch, real_batch = (a.batch if ad.knowledge_transfer.synthetic_rgb else 0), a.batch
        steps = summary["stage2_steps"]
    else:
        batch, real_batch, steps = a.batch, (a.batch if (ad.jo2d or ad.method != "none") else 0), a.steps
    return {"row": name, "pck_aligned_3d": real["pck"], "pck_2d_head": real["pck_2d_head"],
            "val_mpjpe_mm": (summary["val"] or {}).get("mpjpe_mm"), "val_spread": (summary["val"] or {}).get("spread"),
            "lsp_spread_2d_head": real.get("spread_2d_head"), "train_samples": summary["train_samples"],
            "real_train_samples": summary["real_train_samples"],
            "real_labelled": not kt or ad.knowledge_transfer.real_2d, "steps": steps, "batch": a.batch,
            "images_seen": steps * (batch + real_batch), "wall_s": seconds, "cpu_s": cpu,
            "threads": torch.get_num_threads(), "run": str(run_dir), "rendered_by": rendered_by(data),
            **({"kt_stage1": stage1} if kt else {})}


def table(rows: list[dict], a) -> str:
    def pct(v):
        return f"{100 * v:.1f}" if v is not None else "-"
    lines = [f"LSP {a.eval_range} PCK@0.2 (%); EfficientNet-Lite0 (ImageNet) at {a.input_size} px, {a.steps} steps "
             f"x batch {a.batch}, seed {a.seed}, lr {a.lr} (cosine); renders {a.image_size} px, "
             f"{a.render_samples} Cycles samples", "",
             "| row | train samples | aligned 3D | 2D head | val MPJPE (mm) | spread val / LSP | images seen | wall (s) "
             "| CPU (s) | threads |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        n = r.get("train_samples", "-")
        if r["row"] == "real only":
            n = f"{n} real"
        elif r.get("real_train_samples"):
            n = f"{n} + {r['real_train_samples']} real{'' if r.get('real_labelled', True) else ' unlabelled'}"
        mm = f"{r['val_mpjpe_mm']:.0f}" if r.get("val_mpjpe_mm") else "-"
        spread = " / ".join(f"{r[k]:.2f}" if r.get(k) is not None else "-" for k in ("val_spread", "lsp_spread_2d_head"))
        lines.append(f"| {r['row']} | {n} | {pct(r['pck_aligned_3d'])} | {pct(r.get('pck_2d_head'))} | {mm} | {spread} | "
                     f"{r.get('images_seen', 0)} | {r.get('wall_s', 0):.0f} | {r.get('cpu_s', 0):.0f} | "
                     f"{r.get('threads', '-')} |")
    return "\n".join(lines)


def stage1_text(s1: dict) -> str:
    """The knowledge-transfer stage 1 under the table: its cost and its networks' own figures."""
    lines = [f"Knowledge transfer, stage 1 (shared by its rows; not in their wall / CPU columns): "
             f"{s1['epochs']} epoch{'s' if s1['epochs'] != 1 else ''}, {s1['steps']} steps x batch {s1['batch']} "
             f"(the depth and part-mask inputs of the same renders), {s1['wall_s']:.0f} s wall, "
             f"{s1['cpu_s']:.0f} s CPU."]
    tv = s1.get("teachers")
    if tv:
        lines += ["", "| stage-1 network (held-out shard) | MPJPE (mm) | PA-MPJPE (mm) | 3DPCK@150 (%) |",
                  "|---|---|---|---|"]
        for key, label in (("depth", "depth network (rendered depth)"), ("mask", "mask network (rendered part mask)"),
                           ("chain", "mask network on G's mask of the depth network's 2D + depths")):
            m = tv[key]
            lines.append(f"| {label} | {m['mpjpe_mm']:.0f} | {m['pa_mpjpe_mm']:.0f} | {100 * m['pck150']:.1f} |")
        g, gl = tv["segmenter"], tv["segmenter_from_labels"]
        lines += ["", f"G's mask vs the rendered one (argmax): from the depth network's prediction person IoU "
                      f"{g['fg_iou']:.3f}, mIoU {g['miou']:.3f} (parts {g['part_miou']:.3f}); from the labelled 2D + "
                      f"depths person IoU {gl['fg_iou']:.3f}, mIoU {gl['miou']:.3f} (parts {gl['part_miou']:.3f})."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "out" / "data_value")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SYNTH_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--tiny", action="store_true", help="toy scale: proves the procedure in minutes")
    ap.add_argument("--sizes", default="250,500,1000", help="synthetic-only dataset sizes (samples)")
    ap.add_argument("--variant-size", type=int, default=500, help="size of the texture / pose / appearance / +real rows")
    ap.add_argument("--samples-per-shard", type=int, default=50)
    ap.add_argument("--image-size", type=int, default=256, help="render size (pixels)")
    ap.add_argument("--render-samples", type=int, default=16, help="Cycles samples per pixel")
    ap.add_argument("--render-workers", type=int, default=0, help="synth render --workers")
    ap.add_argument("--poses-n", type=int, default=2000, help="poses per pose file")
    ap.add_argument("--textures-few", type=int, default=4)
    ap.add_argument("--textures-many", type=int, default=64)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.0001)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for training (0: all cores)")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-range", default="801-1000")
    ap.add_argument("--base-render", action="append", default=[], metavar="KEY=VALUE",
                    help="render overrides of the base dataset and the texture/pose variants (repeatable), "
                         "e.g. render.clothing.mode=photo for the texture-only renders")
    ap.add_argument("--render-row", action="append", default=[], metavar="NAME:KEY=VALUE,KEY=VALUE",
                    help="an extra row: --variant-size renders with these render overrides (CMU poses), "
                         "e.g. 'mesh clothing:render.clothing.mode=mesh' (repeatable)")
    ap.add_argument("--base-dataset", type=Path,
                    help="use this rendered dataset (>= the largest size / --samples-per-shard + 1 shards) as the "
                         "base instead of rendering it, e.g. one rendered by an earlier version whose rows are kept "
                         "in OUT/rows")
    ap.add_argument("--row-dataset", action="append", default=[], metavar="NAME:FOLDER",
                    help="an extra row trained on a dataset rendered before (e.g. by an earlier version, whose "
                         "configuration today's keys no longer name); its first --variant-size samples (repeatable)")
    ap.add_argument("--rows", help="train only these rows (names separated by ';'); default: all")
    ap.add_argument("--retrain", action="store_true",
                    help="train rows again even when OUT/rows holds a result for the same data and budget")
    ap.add_argument("--kt-stage1-epochs", type=int, default=10,
                    help="knowledge transfer: stage-1 epochs over the --variant-size set (shared by its rows)")
    a = ap.parse_args()
    if a.tiny:
        for k, v in TINY.items():
            setattr(a, k, v)
        a.out = a.out.with_name(a.out.name + "_tiny")
        a.workers = 0
    a.out.mkdir(parents=True, exist_ok=True)
    a.render_rows = []
    for spec in a.render_row:
        name, _, ov = spec.partition(":")
        if not name or not ov:
            raise SystemExit(f"bench_data_value: --render-row {spec!r} is not NAME:KEY=VALUE[,KEY=VALUE...]")
        a.render_rows.append((name.strip(), [o.strip() for o in ov.split(",") if o.strip()]))
    data_dir = a.data_dir.resolve()
    sizes = sorted(int(s) for s in str(a.sizes).split(","))
    spss = a.samples_per_shard
    if any(s % spss for s in sizes + [a.variant_size]):
        raise SystemExit("bench_data_value: every size must be a multiple of --samples-per-shard")
    cache = Cache(a.out, data_dir, a)
    t_start = time.perf_counter()

    print("rendering / reusing datasets ...", file=sys.stderr)
    cmu = cache.poses("cmu")
    n_base = max(sizes + [a.variant_size]) // spss
    # The base dataset: the largest size plus one shard held out by every row (its last shard).
    if a.base_dataset is not None:
        # a base rendered before (by other software: its dataset.json says which), reused as it is
        base = a.base_dataset.resolve()
        if len(list((base / "shards").glob("shard-*.tar"))) < n_base + 1:
            raise SystemExit(f"bench_data_value: --base-dataset {base} has fewer than {n_base + 1} shards")
    else:
        base = cache.render(n_base + 1, [f"dataset.pose_file={cmu}", *a.base_render])
    val_shard = sorted((base / "shards").glob("shard-*.tar"))[-1]
    nv = a.variant_size // spss
    # Variant datasets are rendered only when a chosen row needs them.
    variants = {
        "textures few": lambda: cache.render(nv, [f"dataset.pose_file={cmu}", *a.base_render,
                                                  "render.clothing.mode=library",
                                                  f"textures.library={cache.library(a.textures_few)}"]),
        "textures many": lambda: cache.render(nv, [f"dataset.pose_file={cmu}", *a.base_render,
                                                   "render.clothing.mode=library",
                                                   f"textures.library={cache.library(a.textures_many)}"]),
        "poses cmu,lsp,prior": lambda: cache.render(nv, [f"dataset.pose_file={cache.poses('cmu,lsp,prior')}",
                                                         *a.base_render]),
    }
    for name, overrides in a.render_rows:
        variants[name] = (lambda ov: lambda: cache.render(nv, [f"dataset.pose_file={cmu}", *ov]))(overrides)
    for spec in a.row_dataset:
        name, _, folder = spec.partition(":")
        folder = Path(folder).resolve()
        if not name.strip() or not (folder / "dataset.json").is_file():
            raise SystemExit(f"bench_data_value: --row-dataset {spec!r} is not NAME:FOLDER of a rendered dataset")
        variants[name.strip()] = (lambda f: lambda: f)(folder)

    rows = []
    largest = view(a.out, f"synthetic_{sizes[-1]}", base, sizes[-1] // spss, val_shard)
    rows.append({"row": "mean pose", "pck_aligned_3d": mean_pose_pck(largest, data_dir / "lsp", a.eval_range),
                 "pck_2d_head": None, "train_samples": sizes[-1]})
    plan = [(f"synthetic {s}", lambda s=s: view(a.out, f"synthetic_{s}", base, s // spss, val_shard), [])
            for s in sizes]
    base_v = lambda: view(a.out, f"synthetic_{a.variant_size}", base, nv, val_shard)
    plan += [(name, lambda name=name, ds=ds: view(a.out, name.replace(" ", "_").replace(",", "+"), ds(), nv,
                                                   val_shard), [])
             for name, ds in variants.items()]
    plan += [("appearance on", base_v, ["train.appearance.enabled=true"]),
             ("real only", lambda: None, ["train.data_source=real"]),
             ("synthetic + real (Jo2D)", base_v, ["train.adaptation.jo2d=true"]),
             ("synthetic, integral head", base_v, ["train.head=integral"])]
    # (the stage-1 epochs are among a knowledge-transfer row's overrides: they key its cached result)
    plan += [("knowledge transfer", base_v, kt_stage1_extra(a), KT),
             ("knowledge transfer + synthetic RGB", base_v,
              [*kt_stage1_extra(a), "train.adaptation.knowledge_transfer.synthetic_rgb=true"], KT)]
    if a.rows:
        wanted = [r.strip() for r in a.rows.split(";")]
        unknown = set(wanted) - {p[0] for p in plan}
        if unknown:
            raise SystemExit(f"bench_data_value: unknown rows {sorted(unknown)}; rows: "
                             f"{'; '.join(p[0] for p in plan)}")
        plan = [p for p in plan if p[0] in wanted]
    plan = [(name, make(), *rest) for name, make, *rest in plan]   # renders what the chosen rows need
    render_s = time.perf_counter() - t_start
    for name, data, extra, *recipe in plan:
        print(f"training: {name} ...", file=sys.stderr)
        rows.append(cached_row(name, a.out, data, a, data_dir, extra, *recipe))
        print(f"  PCK@0.2 aligned {100 * rows[-1]['pck_aligned_3d']:.1f} %, 2D head "
              f"{100 * rows[-1]['pck_2d_head']:.1f} % ({rows[-1]['wall_s']:.0f} s)", file=sys.stderr)
    text = table(rows, a)
    stage1 = next((r["kt_stage1"] for r in rows if r.get("kt_stage1")), None)
    if stage1 is not None:
        text += "\n\n" + stage1_text(stage1)
    total = time.perf_counter() - t_start
    text += f"\n\nrendering (or reusing) the datasets: {render_s:.0f} s; whole benchmark: {total:.0f} s"
    print(text)
    (a.out / "data_value.md").write_text(text + "\n")
    (a.out / "data_value.json").write_text(json.dumps({"settings": {k: (str(v) if isinstance(v, Path) else v)
                                                                     for k, v in vars(a).items()},
                                                        "rows": rows, "knowledge_transfer_stage1": stage1,
                                                        "render_s": render_s, "total_s": total},
                                                       indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
