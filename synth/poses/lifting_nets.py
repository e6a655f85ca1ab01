"""The two small networks of the stereo-inspired lifter (Wang et al. 2019) and their training.

Both are Martinez et al. (2017) style MLPs: a linear layer to `hidden` units, `blocks` residual
blocks of two (linear, batch-norm, ReLU, dropout) layers, a linear output layer. Inputs and
targets are z-scored with the training set's statistics (kept with the weights), and the loss is
the mean squared error in z-scored units, as in Martinez et al.

- view synthesis: the normalised 2D pose (15 x 2) -> the 2D pose seen by the camera shifted
  `baseline_m` along its x axis, in the *first* view's normalised coordinates (so the disparity,
  which carries the depth, survives the normalisation). It predicts the shift from view 1.
- reconstruction: both views (15 x 2 + 15 x 2) -> the root-relative 3D pose in the first camera's
  frame, metres (14 joints; the root is 0 by construction).

Pure torch on the CPU; only `synth.poses.lifting` imports this module.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class Mlp(nn.Module):
    """Martinez-style lifter MLP with z-scoring of inputs and outputs built in (buffers)."""

    def __init__(self, n_in: int, n_out: int, hidden: int, blocks: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            *[ResidualBlock(hidden, dropout) for _ in range(blocks)],
            nn.Linear(hidden, n_out))
        self.register_buffer("in_mean", torch.zeros(n_in))
        self.register_buffer("in_std", torch.ones(n_in))
        self.register_buffer("out_mean", torch.zeros(n_out))
        self.register_buffer("out_std", torch.ones(n_out))

    def set_statistics(self, x: np.ndarray, y: np.ndarray) -> None:
        # A constant coordinate (std 0) is passed through unscaled rather than divided by 0.
        for name, a in (("in", x), ("out", y)):
            mean, std = a.mean(0), a.std(0)
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(mean, dtype=torch.float32))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(np.where(std > 1e-8, std, 1.0), dtype=torch.float32))

    def forward_scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Z-scored output for raw input (what the loss sees)."""
        return self.net((x - self.in_mean) / self.in_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_scaled(x) * self.out_std + self.out_mean

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch: int = 8192) -> np.ndarray:
        self.eval()
        out = [self(torch.as_tensor(x[i:i + batch], dtype=torch.float32)).numpy()
               for i in range(0, len(x), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.out_mean.numel()), np.float32)


def seeded_mlp(seed: int, n_in: int, n_out: int, hidden: int, blocks: int, dropout: float) -> Mlp:
    """An Mlp whose initial weights depend on `seed` alone, not on what used torch's global RNG
    before (measured: two fresh `synth sample-poses` runs trained different lifters)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Mlp(n_in, n_out, hidden, blocks, dropout)


def train_mlp(model: Mlp, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
              lr_decay: float, order_rng: np.random.Generator, torch_seed: int, progress: bool = False,
              desc: str = "lifter") -> list[float]:
    """Fit `model` to (x, y) with Adam; returns the mean training loss of each epoch. Batches in
    orders drawn from `order_rng`; dropout draws from torch's RNG seeded with `torch_seed`, in a
    fork: the global RNG is left as it was."""
    model.set_statistics(x, y)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = (torch.as_tensor(y, dtype=torch.float32) - model.out_mean) / model.out_std
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_decay)
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed)
        for _ in tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress):
            model.train()
            perm = torch.as_tensor(order_rng.permutation(len(x)))
            total, count = 0.0, 0
            # Drop a last batch of 1 (batch-norm needs two samples).
            for i in range(0, len(x) - 1, batch_size):
                idx = perm[i:i + batch_size]
                if len(idx) < 2:
                    break
                loss = torch.mean((model.forward_scaled(xt[idx]) - yt[idx]) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            sched.step()
            losses.append(total / max(count, 1))
    model.eval()
    return losses


def state_bytes(models: dict[str, Mlp], meta: dict) -> bytes:
    """The weights of `models` and `meta` as one torch file's bytes (written atomically by the caller)."""
    buf = io.BytesIO()
    torch.save({"meta": meta, "models": {k: m.state_dict() for k, m in models.items()}}, buf)
    return buf.getvalue()


def load_state(path, shapes: dict[str, tuple[int, int]], hidden: int, blocks: int, dropout: float):
    """(models, meta) from a file written with `state_bytes`."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    models = {}
    for name, (n_in, n_out) in shapes.items():
        m = Mlp(n_in, n_out, hidden, blocks, dropout)
        m.load_state_dict(blob["models"][name])
        m.eval()
        models[name] = m
    return models, blob["meta"]
