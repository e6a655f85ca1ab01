"""Does the data loader keep up with training? Measured, not assumed.

    python benchmarks/bench_loader.py DATASET_DIR [--samples 192] [--batch 32] [--steps 3]

Prints, at input 128 and 256:
  (1) loader samples/s: reading a shard sample, JPEG decode, crop, the default augmentation
      (rotation, scale, colour jitter, synthetic occlusion) and normalisation, through a
      DataLoader with 1 and with 2 worker processes (worker start-up included: an epoch pays it);
  (2) training samples/s of resnet18 (width 64, regression head) on CPU: forward, L1 loss,
      backward, Adam step, on a real batch;
and the ratio loader / training (above 1: the loader is not the bottleneck). When CUDA is
available it also prints GPU training images/s at 256×256 with mixed precision (autocast +
GradScaler), which is the figure the issue asks for on GPU.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.config import load_config  # noqa: E402
from synth.train.augment import build_augmenter  # noqa: E402
from synth.train.data import PoseShardDataset, list_shards  # noqa: E402
from synth.train.models import build_model  # noqa: E402


def loader_rate(ds, samples: int, workers: int, batch: int) -> float:
    # Sampling with replacement lets a small dataset feed any number of samples.
    sampler = RandomSampler(ds, replacement=True, num_samples=samples, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers)
    n, t0 = 0, time.perf_counter()
    for b in loader:
        n += len(b["image"])
    return n / (time.perf_counter() - t0)


@torch.enable_grad()
def train_rate(images: torch.Tensor, target: torch.Tensor, steps: int, device: torch.device,
               amp: bool = False) -> float:
    torch.manual_seed(0)
    tc = load_config(None, ["train.backbone=resnet18", "train.width=64", "train.head=regression"]).train
    model = build_model(tc).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    images, target = images.to(device), target.to(device)

    def step():
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = torch.nn.functional.l1_loss(model(images).float(), target)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    step()   # warm-up: allocations, kernel selection
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(images) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--samples", type=int, default=192, help="samples per loader measurement")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per input size")
    ap.add_argument("--gpu-batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    shards = list_shards(a.dataset)
    cfg = load_config(None, [])
    print(f"dataset {a.dataset}: {len(shards)} shards; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; augmentation: {cfg.train.augment.model_dump()}")
    # An untimed pass first, so every measurement finds the shards in the page cache.
    loader_rate(PoseShardDataset(a.dataset, shards, 128), min(a.samples, 64), 0, a.batch)
    print(f"{'input':>6} {'loader 1 worker':>16} {'loader 2 workers':>17} {'train step (CPU)':>17} {'loader/train':>13}"
          f"   (samples/s)")
    for size in (128, 256):
        ds = PoseShardDataset(a.dataset, shards, size, augment=build_augmenter(cfg.train.augment, cfg.seed))
        rates = [loader_rate(ds, a.samples, w, a.batch) for w in (1, 2)]
        batch = next(iter(DataLoader(ds, batch_size=a.batch,
                                     sampler=RandomSampler(ds, replacement=True, num_samples=a.batch))))
        train = train_rate(batch["image"], batch["target"], a.steps, torch.device("cpu"))
        print(f"{size:>6} {rates[0]:>16.1f} {rates[1]:>17.1f} {train:>17.1f} {max(rates) / train:>13.1f}")
    if torch.cuda.is_available():
        images = torch.randn(a.gpu_batch, 3, 256, 256)
        target = torch.randn(a.gpu_batch, 15, 3) * 0.1
        rate = train_rate(images, target, max(a.steps, 10), torch.device("cuda"), amp=True)
        print(f"GPU ({torch.cuda.get_device_name()}): resnet18 training at 256x256, batch {a.gpu_batch}, "
              f"mixed precision: {rate:.1f} images/s")
    else:
        print("GPU: no CUDA device here; the GPU training figure needs one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
