"""The config-driven training loop: synthetic pose training, domain adaptation to real photos
(synth.train.adaptation: DANN, domain mixer, SAA, Jo2D) and skeletal pose adaptation (SPA).

`train` is deterministic for a given config and dataset on CPU: the model is initialised from
the TRAIN_INIT stream of `seed` (synth.rng) or, with `train.pretrained`, its backbone from
ImageNet weights (synth.train.pretrained), each epoch's synthetic order comes from the
TRAIN_ORDER stream of (seed, epoch) and its real order from TRAIN_REAL_ORDER (seed, epoch, pass
over the real set), the learning rate is a function of the global step, and the checkpoint
carries every module, optimiser, the grad scaler, the step counter and the RNG states; so
training N epochs in one go or stopping after any epoch and resuming gives the same weights.

Both heads are trained: the 3D loss on the items with 3D labels and the 2D head's L1
(`train.loss_2d_weight`). `train.data_source=real` trains on the 2D labels of the real photos
alone (the 3D head through the aligned projection, Jo2D's loss); `train.steps` fixes the number
of optimisation steps whatever the dataset size.

On CUDA the steps run under `torch.autocast` (float16) with a GradScaler (`train.amp`) and in the
channels-last layout (`train.channels_last`); on the CPU in float32. (The CUDA path is written to
the PyTorch AMP recipe; it has not been run on a GPU in this project's tests.)
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from synth.config import Config, ConfigError, Paths, RealConfig, SpaConfig, TrainConfig, config_yaml
from synth.io_utils import InputError, atomic_write_bytes, atomic_write_text
from synth.rng import Stream, torch_seed
from synth.train import adaptation as da
from synth.train.appearance import build_appearance
from synth.train.augment import build_augmenter
# the checkpoint and device helpers live in synth.train.checkpoint (evaluation shares them);
# evaluate/format_table in synth.train.evaluate: both re-exported for code that imports them from here
from synth.train.checkpoint import CHECKPOINT_NAME, CHECKPOINT_SCHEMA, load_checkpoint, resolve_device  # noqa: F401
from synth.train.data import PoseShardDataset, train_val_datasets
from synth.train.evaluate import evaluate, format_table, predict_items  # noqa: F401
from synth.train.metrics import COLLAPSED_SPREAD, pck_2d_aligned, pose_metrics, to_millimetres
from synth.train.models import build_model, count_parameters
from synth.train.pretrained import load_pretrained_backbone
from synth.train.real_data import LspDataset

LOG_NAME = "log.csv"
STEP_LOG_NAME = "steps.csv"
CONFIG_NAME = "config.yaml"
TENSORBOARD_DIR = "tensorboard"
# Settings a resumed run must share with its checkpoint: they define the model, its targets and
# the extra modules whose states the checkpoint holds.
RESUME_MUST_MATCH = ("backbone", "head", "width", "input_size", "skeleton_length", "data_source")
LOSSES = {"l1": torch.nn.functional.l1_loss, "l2": torch.nn.functional.mse_loss}
# Methods with a training loop of their own, by `train.adaptation.method`: a function with `train`'s
# signature. Their modules build on this one's helpers, so they register here when imported
# (synth.train imports synth.train.knowledge_transfer_trainer) instead of being imported by it.
OWN_LOOPS: dict[str, Callable[..., dict]] = {}


def memory_format(device: torch.device, tc: TrainConfig) -> torch.memory_format:
    """channels-last on CUDA when `train.channels_last` (faster convolutions with tensor cores,
    above all under float16 autocast); the CPU keeps the default layout."""
    if device.type == "cuda" and tc.channels_last:
        return torch.channels_last
    return torch.contiguous_format


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's global RNGs from the TRAIN_INIT stream of `seed` (the model's
    initial weights come from torch's)."""
    s = torch_seed(seed, Stream.TRAIN_INIT)
    random.seed(s)
    np.random.seed(s % 2 ** 32)
    torch.manual_seed(s)
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


def _read_log(path: Path, upto: int, key: str = "epoch") -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r.get(key, "").isdigit() and int(r[key]) <= upto]


def _write_log(path: Path, fields: list[str], rows: list[dict]) -> None:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, out.getvalue())


def _loader(ds, batch_size: int, workers: int, device: torch.device, sampler=None, drop_last=False):
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                      pin_memory=device.type == "cuda", drop_last=drop_last,
                      persistent_workers=False)


def predict(model, ds: PoseShardDataset, device: torch.device, batch_size: int, workers: int = 0,
            desc: str = "eval", post=None) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, ground truths) as root-relative millimetres (N, J, 3); both are scaled by
    the ground truth's normalisation factor (see synth.train.metrics). `post` (e.g. an SPA head)
    is applied to the network's output."""
    p = predict_items(model, ds, device, batch_size, workers, desc, post)
    return (to_millimetres(p["pred"], p["scale"], ds.root_index),
            to_millimetres(p["target"], p["scale"], ds.root_index))


# The held-out columns of an epoch's row in log.csv (both trainers), as `val_columns` fills them.
VAL_FIELDS = ["val_mpjpe_mm", "val_pa_mpjpe_mm", "val_pck150", "val_auc", "val_spread", "real_pck02"]


def val_columns(val_metrics: dict | None, real_pck: float | None) -> dict:
    """The VAL_FIELDS of a log row: the held-out metrics (empty without a held-out set) and the
    LSP PCK@0.2 (empty when not logged)."""
    def fmt(key: str, spec: str) -> str:
        return format(val_metrics[key], spec) if val_metrics else ""
    return {"val_mpjpe_mm": fmt("mpjpe_mm", ".2f"), "val_pa_mpjpe_mm": fmt("pa_mpjpe_mm", ".2f"),
            "val_pck150": fmt("pck150", ".4f"), "val_auc": fmt("auc", ".4f"), "val_spread": fmt("spread", ".4f"),
            "real_pck02": f"{real_pck:.4f}" if real_pck is not None else ""}


def warn_if_collapsed(val_metrics: dict | None, when: str, hint: str) -> None:
    """Warn when the held-out predictions barely vary between samples (metrics.prediction_spread
    below COLLAPSED_SPREAD): the network predicts one pose for every image, and its errors are a
    mean pose's. Seen when a pretrained backbone with frozen BatchNorm is fine-tuned at too high a
    learning rate (Adam 1e-3: collapsed within 40 steps). `hint`: what to change."""
    spread = (val_metrics or {}).get("spread")
    if spread is not None and spread < COLLAPSED_SPREAD:
        warnings.warn(f"{when}: the held-out predictions barely vary between samples (spread "
                      f"{spread:.3f} of the labels'): the network has collapsed to one pose; {hint}",
                      stacklevel=2)


def total_steps_of(tc: TrainConfig, steps_per_epoch: int) -> int:
    """The run's optimisation steps: `train.steps` when set, else epochs × steps per epoch."""
    return tc.steps if tc.steps else tc.epochs * steps_per_epoch


def lr_factor(tc: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning-rate multiplier at a global step (`train.lr_schedule`)."""
    if tc.lr_schedule == "cosine":
        total = max(total_steps_of(tc, steps_per_epoch), 1)
        lo = tc.lr_min_factor
        return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * min(step / total, 1.0)))
    if tc.lr_schedule == "step":
        return tc.lr_step_gamma ** ((step // max(steps_per_epoch, 1)) // tc.lr_step_epochs)
    return 1.0


def real_folder(real: RealConfig, data_dir: Path) -> Path:
    """`train.real.folder`, or <data_dir>/lsp (the LSP training half of the data mirror)."""
    return Path(real.folder) if real.folder else Path(data_dir) / "lsp"


def real_datasets(tc: TrainConfig, data_dir: Path, need_train: bool, augment=None, log_pck: bool | None = None):
    """(training, evaluation) LSP subsets of `train.real` (None where not wanted / available;
    `log_pck` overrides `train.real.log_pck` for the evaluation set)."""
    folder = real_folder(tc.real, data_dir)
    if need_train:
        if not folder.is_dir():
            raise InputError(f"{folder}: real-image folder for train.adaptation / train.data_source=real not "
                             "found (set train.real.folder or data_dir)")
        train_ds = LspDataset(folder, tc.input_size, indices=list(range(*tc.real.train_range)), augment=augment)
    else:
        train_ds = None
    eval_ds = None
    if (tc.real.log_pck if log_pck is None else log_pck) and folder.is_dir():
        eval_ds = LspDataset(folder, tc.input_size, indices=list(range(*tc.real.eval_range)))
    return train_ds, eval_ds


def _real_batches(ds, batch_size: int, workers: int, device, seed: int, epoch: int):
    """Endless real batches for one epoch: passes over `ds`, each in an order drawn from
    (seed, epoch, pass) alone."""
    n_pass = 0
    bs = min(batch_size, len(ds))
    while True:
        g = torch.Generator().manual_seed(torch_seed(seed, Stream.TRAIN_REAL_ORDER, epoch, n_pass))
        yield from _loader(ds, bs, workers, device, RandomSampler(ds, generator=g), drop_last=True)
        n_pass += 1



def autocast(amp: bool):
    """float16 autocast on CUDA when `amp`, else nothing."""
    return torch.autocast("cuda", dtype=torch.float16) if amp else contextlib.nullcontext()


def scaled_update(scaler, optimizers: dict, loss: torch.Tensor, names: list[str]) -> None:
    """One optimisation step through the grad scaler: every optimiser's gradients cleared, the
    scaled loss back-propagated, then only the optimisers `names` stepped."""
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    for n in names:
        scaler.step(optimizers[n])
    scaler.update()

class _Tensorboard:
    """SummaryWriter when `train.tensorboard` and tensorboard is installed; otherwise nothing."""

    def __init__(self, enabled: bool, folder: Path):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter    # optional: the tensorboard package
            except ImportError:
                print("train: tensorboard is not installed; logging to CSV only", file=sys.stderr)
                return
            self.writer = SummaryWriter(str(folder))

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _Stepper:
    """One optimisation step per call for the configured method. Holds the modules, optimisers and
    grad scaler; `losses` returns floats to log."""

    def __init__(self, tc: TrainConfig, model: torch.nn.Module, device: torch.device, num_joints: int):
        ad = tc.adaptation
        self.tc, self.ad, self.method = tc, ad, ad.method
        self.jo2d = ad.jo2d
        self.model, self.device = model, device
        self.size = tc.input_size
        self.loss_fn = LOSSES[tc.loss]
        self.w2d = tc.loss_2d_weight
        self.amp = device.type == "cuda" and tc.amp
        self.memory_format = memory_format(device, tc)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ext_params, self.reg_params = da.split_parameters(model, self.size, device)
        self.ext_bns = da.extractor_batchnorms(model, self.ext_params)
        # train.freeze_bn: the backbone's BatchNorm layers keep their (pretrained) statistics and
        # normalise with them while training (their scale and shift still learn): small batches
        # give noisy batch statistics, and running averages of those drift from what the
        # pretrained layers expect, so a network trained so predicts worse in eval mode.
        self.freeze_bn = tc.freeze_bn
        self.backbone_bns = [m for m in model.backbone.modules()
                             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        self.modules: dict[str, torch.nn.Module] = {}
        if self.method in ("dann", "mixer"):
            self.modules["domain_classifier"] = da.DomainClassifier(
                model.feature_channels, ad.classifier_hidden).to(device)
        elif self.method == "saa":
            self.modules["saa_discriminator"] = da.JointDiscriminator(
                model.feature_channels, num_joints, ad.saa.hidden, ad.saa.layers).to(device)
        self.optimizers = {"main": torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)}
        self.base_lr = {"main": tc.lr}
        if self.modules:
            params = [p for m in self.modules.values() for p in m.parameters()]
            lr = ad.domain_lr if ad.domain_lr else tc.lr
            self.optimizers["domain"] = torch.optim.Adam(params, lr=lr, weight_decay=tc.weight_decay)
            self.base_lr["domain"] = lr

    @property
    def needs_real(self) -> bool:
        return self.method != "none" or self.jo2d

    def loss_names(self) -> list[str]:
        names = ["loss", "pose", "pose_2d"]
        if self.method == "dann":
            names += ["domain_ce", "domain_acc", "grl_weight"]
        elif self.method == "mixer":
            names += ["stage", "domain_ce", "domain_acc", "confusion"]
        elif self.method == "saa":
            names += ["disc_loss", "disc_acc", "confusion"]
        if self.jo2d:
            names += ["jo2d"]
        return names

    def set_lr(self, factor: float) -> None:
        for name, opt in self.optimizers.items():
            for g in opt.param_groups:
                g["lr"] = self.base_lr[name] * factor

    def state(self) -> dict:
        return {"modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "scaler": self.scaler.state_dict()}

    def load_state(self, ckpt: dict) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(ckpt["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])

    def train_mode(self) -> None:
        self.model.train()
        for m in self.modules.values():
            m.train()
        if self.freeze_bn:
            for m in self.backbone_bns:
                m.eval()

    def _autocast(self):
        return autocast(self.amp)

    def _update(self, loss: torch.Tensor, names: list[str]) -> None:
        scaled_update(self.scaler, self.optimizers, loss, names)

    def _head_losses(self, fmap: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(3D pose loss, 2D loss, their weighted sum) of the heads on one batch: the 3D loss over
        the items with 3D labels (0 when none has), the 2D head's masked L1 over the visible
        joints in normalised crop coordinates (da.head_2d_loss) and, for the items without 3D
        labels in a batch that is trained on 2D alone (train.data_source=real), the aligned
        projection loss of the 3D prediction (Jo2D's) so that the 3D head learns too."""
        out = self.model.heads(fmap)
        j3d, j2d = out.joints_3d.float(), out.joints_2d.float()
        has_3d = batch["has_3d"]
        pose = (self.loss_fn(j3d[has_3d], batch["target"][has_3d]) if bool(has_3d.any())
                else j3d.sum() * 0.0)
        loss_2d = da.head_2d_loss(j2d, batch["joints_2d_crop"], batch["visible_2d"], self.size)
        total = pose + self.w2d * loss_2d
        if not bool(has_3d.all()):
            flat = ~has_3d
            total = total + self.ad.jo2d_weight * da.jo2d_loss(
                j3d[flat], batch["joints_2d_crop"][flat], batch["visible_2d"][flat])
        return pose, loss_2d, total

    def _jo2d(self, fmap_real, real) -> torch.Tensor:
        """Jo2D on the real batch: the aligned projection of the 3D prediction, plus the 2D
        head's loss on the same labels (weighted as on synthetic data)."""
        out = self.model.heads(fmap_real)
        j = da.jo2d_loss(out.joints_3d.float(), real["joints_2d_crop"], real["visible_2d"])
        return j + self.w2d * da.head_2d_loss(out.joints_2d.float(), real["joints_2d_crop"],
                                              real["visible_2d"], self.size)

    def step(self, syn: dict, real: dict | None, step: int, total_steps: int) -> dict:
        """One optimisation step; `syn`/`real` are batches already on the device."""
        ad = self.ad
        xs = syn["image"]
        bs = len(xs)
        x = xs if real is None else torch.cat([xs, real["image"]])
        x = x.contiguous(memory_format=self.memory_format)
        out: dict = {}
        if real is not None:
            domain = torch.cat([torch.full((bs,), da.SYNTHETIC, dtype=torch.long),
                                torch.full((len(real["image"]),), da.REAL, dtype=torch.long)]).to(self.device)
        if self.method == "mixer":
            return self._mixer_step(x, bs, syn, real, domain, step)
        with self._autocast():
            fmap = self.model.extract(x)
            pose, pose_2d, loss = self._head_losses(fmap[:bs], syn)
            if self.method == "dann":
                lam = da.dann_lambda(step / max(total_steps, 1), ad.dann.gamma)
                logits = self.modules["domain_classifier"](da.grad_reverse(da.pool(fmap), lam))
                ce = da.domain_ce(logits, domain)
                loss = loss + ad.dann.weight * ce
                out.update(domain_ce=ce.item(), grl_weight=lam,
                           domain_acc=(logits.argmax(1) == domain).float().mean().item())
            elif self.method == "saa":
                disc = self.modules["saa_discriminator"]
                j2d = torch.cat([syn["joints_2d_crop"], real["joints_2d_crop"]])
                vis = torch.cat([syn["visible_2d"], real["visible_2d"]])
                # Extractor side: the discriminator is frozen, its read-outs pushed toward 0.5.
                da.set_requires_grad(disc.parameters(), False)
                conf = da.saa_confusion_loss(da.sample_at_joints(disc(fmap), j2d, self.size), vis)
                da.set_requires_grad(disc.parameters(), True)
                # Discriminator side: on detached features, so it does not move the extractor.
                logits_d = da.sample_at_joints(disc(fmap.detach()), j2d, self.size)
                d_loss = da.saa_discriminator_loss(logits_d, domain, vis)
                loss = loss + ad.saa.confusion_weight * conf + d_loss
                hit = ((logits_d > 0).long() == domain[:, None]).float()
                out.update(disc_loss=d_loss.item(), confusion=conf.item(),
                           disc_acc=((hit * vis).sum() / vis.sum().clamp_min(1)).item())
            if self.jo2d:
                j = self._jo2d(fmap[bs:], real)
                loss = loss + ad.jo2d_weight * j
                out["jo2d"] = j.item()
        self._update(loss, list(self.optimizers))
        out.update(loss=loss.item(), pose=pose.item(), pose_2d=pose_2d.item())
        return out

    def _mixer_step(self, x, bs, syn, real, domain, step: int) -> dict:
        mx = self.ad.mixer
        clf = self.modules["domain_classifier"]
        stage = da.mixer_stage(step, mx.warmup_steps, mx.classifier_steps_per_extractor_step)
        out = {"stage": stage}
        with self._autocast():
            if stage == 1:
                # Extractor frozen (no gradient, BatchNorm statistics fixed): the regressor learns
                # the pose and the classifier learns the domains from the same features.
                for m in self.ext_bns:
                    m.eval()
                with torch.no_grad():
                    fmap = self.model.extract(x)
                for m in self.ext_bns:
                    m.train(not (self.freeze_bn and m in self.backbone_bns))
                pose, pose_2d, loss = self._head_losses(fmap[:bs], syn)
                logits = clf(da.pool(fmap))
                ce = da.domain_ce(logits, domain)
                loss = loss + ce
                out.update(domain_ce=ce.item())
            else:
                # Classifier frozen: the extractor (and regressor) learn the pose and to confuse it.
                da.set_requires_grad(clf.parameters(), False)
                fmap = self.model.extract(x)
                pose, pose_2d, loss = self._head_losses(fmap[:bs], syn)
                logits = clf(da.pool(fmap))
                conf = da.confusion_ce(logits)
                loss = loss + mx.confusion_weight * conf
                out.update(confusion=conf.item(), domain_ce=da.domain_ce(logits, domain).item())
            if self.jo2d:
                j = self._jo2d(fmap[bs:], real)
                loss = loss + self.ad.jo2d_weight * j
                out["jo2d"] = j.item()
        out["domain_acc"] = (logits.detach().argmax(1) == domain).float().mean().item()
        self._update(loss, ["main", "domain"] if stage == 1 else ["main"])
        if stage == 2:
            da.set_requires_grad(clf.parameters(), True)
        out.update(loss=loss.item(), pose=pose.item(), pose_2d=pose_2d.item())
        return out


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def initial_model(tc: TrainConfig, num_joints: int, device: torch.device,
                  pretrained: bool = True) -> tuple[torch.nn.Module, str | None]:
    """The network `train` starts from: built from `tc` (its weights drawn from torch's global RNG:
    call seed_everything first), its backbone's `train.pretrained` weights loaded unless not
    `pretrained`, on `device` in the training memory format; and where the weights came from."""
    model = build_model(tc, num_joints).to(device)
    pretrained_from = load_pretrained_backbone(model, tc) if pretrained else None
    return model.to(memory_format=memory_format(device, tc)), pretrained_from


def synthetic_step(tc: TrainConfig, model: torch.nn.Module, device: torch.device, num_joints: int):
    """`step(batch, i, total_steps) -> losses`: one optimisation step exactly as `train` takes it
    on a synthetic batch (the loss, Adam and, on CUDA with `train.amp`, float16 autocast with a
    GradScaler of `tc`), the batch moved to `device` first (a no-op for one already there). For
    tools and benchmarks that drive or time the trainer's own step without its loop; the model
    is put in training mode. Domain adaptation and Jo2D need real batches: ConfigError."""
    stepper = _Stepper(tc, model, device, num_joints)
    if stepper.needs_real:
        raise ConfigError("config key 'train.adaptation' must be method none without jo2d for a "
                          "synthetic-only step")
    stepper.train_mode()

    def step(batch: dict, i: int, total_steps: int) -> dict:
        return stepper.step(_to_device(batch, device), None, i, total_steps)

    return step


def _check_resume(ckpt: dict, tc: TrainConfig, seed: int, ckpt_path: Path, joint_names: list[str],
                  data_dir: Path | None) -> None:
    old = ckpt["config"]
    for key in RESUME_MUST_MATCH:
        # A checkpoint written before `data_source` existed trained on rendered shards.
        a, b = old["train"].get(key, "synthetic" if key == "data_source" else None), getattr(tc, key)
        if a != b:
            raise ConfigError(f"{ckpt_path}: config key 'train.{key}' = {b!r} differs from the "
                              f"checkpoint's {a!r}; use a new output folder or no resume")
    a, b = old["train"].get("adaptation", {}).get("method", "none"), tc.adaptation.method
    if a != b:
        raise ConfigError(f"{ckpt_path}: config key 'train.adaptation.method' = {b!r} differs from the "
                          f"checkpoint's {a!r}; use a new output folder or no resume")
    if old["seed"] != seed:
        raise ConfigError(f"{ckpt_path}: config key 'seed' = {seed} differs from the checkpoint's {old['seed']}")
    if ckpt["joint_names"] != joint_names:
        where = data_dir / "dataset.json" if data_dir is not None else ckpt_path
        raise InputError(f"{where}: joint order differs from the checkpoint's")


# Gradients are switched on explicitly: another stage in the same process may have turned them
# off globally (torch.set_grad_enabled(False)).
@torch.enable_grad()
def train(tc: TrainConfig, data_dir: Path | None, out_dir: Path, *, seed: int = 0, paths: Paths | None = None,
          record: Config | None = None, resume: bool = True) -> dict:
    """Train the network of the `train` section `tc` on the training shards of `data_dir` (and,
    for adaptation, the real photos of `train.real`; without `train.real.folder` they are
    `paths.data`/lsp; with `train.data_source=real` on those photos alone, and `data_dir` is
    None), writing out_dir/{checkpoint.pt, log.csv, steps.csv, config.yaml, tensorboard/};
    returns a summary with the last validation metrics. Every random draw derives from `seed`.
    `record`: the whole configuration written to config.yaml and the checkpoint (default: `seed`
    and `tc`). With `resume` and an existing checkpoint, training continues after its epoch."""
    if tc.adaptation.method in OWN_LOOPS:
        return OWN_LOOPS[tc.adaptation.method](tc, data_dir, out_dir, seed=seed, paths=paths, record=record,
                                               resume=resume)
    out_dir = Path(out_dir)
    paths = paths if paths is not None else Config().paths()
    stored = (record.model_dump(mode="json") if record is not None
              else {"seed": seed, "train": tc.model_dump(mode="json")})
    real_only = tc.data_source == "real"
    if real_only:
        # 2D labels of the real training photos alone: no rendered shards, nothing held out.
        train_ds, _ = real_datasets(tc, paths.data, True, build_augmenter(tc.augment, seed, 1), log_pck=False)
        val_ds = None
        if data_dir is not None:
            print(f"train: train.data_source=real trains on the real photos alone; {data_dir} is not read",
                  file=sys.stderr)
        data_dir = None
    else:
        if data_dir is None:
            raise InputError("synth train: give --data DATASET (or train.data_source=real)")
        data_dir = Path(data_dir)
        train_ds, val_ds = train_val_datasets(data_dir, tc, build_augmenter(tc.augment, seed, 0),
                                              build_appearance(tc.appearance, seed, paths.data))
    joint_names = train_ds.joint_names
    device = resolve_device(tc.device)
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    ckpt_path, log_path, step_log_path = out_dir / CHECKPOINT_NAME, out_dir / LOG_NAME, out_dir / STEP_LOG_NAME
    resuming = resume and ckpt_path.exists()

    seed_everything(seed)
    # A resumed run's weights come from its checkpoint.
    model, pretrained_from = initial_model(tc, len(joint_names), device, pretrained=not resuming)
    stepper = _Stepper(tc, model, device, len(joint_names))
    real_train, real_eval = real_datasets(tc, paths.data, stepper.needs_real,
                                          build_augmenter(tc.augment, seed, 1) if stepper.needs_real else None) \
        if (stepper.needs_real or tc.real.log_pck) else (None, None)
    spa_cfg = tc.adaptation.spa
    spa_target = da.spa_target(spa_cfg.target, joint_names) if spa_cfg.enabled else None

    bs = tc.batch_size
    # A last batch of one sample would break BatchNorm's batch statistics; drop it.
    drop_last = len(train_ds) % bs == 1 and len(train_ds) > 1
    steps_per_epoch = len(train_ds) // bs if drop_last else math.ceil(len(train_ds) / bs)
    total_steps = total_steps_of(tc, steps_per_epoch)
    epochs = math.ceil(total_steps / steps_per_epoch) if tc.steps else tc.epochs

    start_epoch, step, rows, step_rows, spa_state = 0, 0, [], [], None
    # Metres per normalised unit of the training skeletons (mean), for `synth predict`; a run on
    # 2D labels alone has none.
    skeleton_scale = train_ds.mean_scale() if isinstance(train_ds, PoseShardDataset) else None
    out_dir.mkdir(parents=True, exist_ok=True)
    if resuming:
        ckpt = load_checkpoint(ckpt_path)
        _check_resume(ckpt, tc, seed, ckpt_path, joint_names, data_dir)
        model.load_state_dict(ckpt["model"])
        if "optimizers" not in ckpt:          # written before the adaptation modules existed
            ckpt = {**ckpt, "modules": {}, "optimizers": {"main": ckpt["optimizer"]}}
        stepper.load_state(ckpt)
        _set_rng_state(ckpt["rng"])
        start_epoch, step = int(ckpt["epoch"]), int(ckpt.get("step", 0))
        # An SPA head fitted after an earlier last epoch belongs to the earlier network.
        spa_state = ckpt.get("spa") if start_epoch >= epochs else None
        pretrained_from = ckpt.get("pretrained_from")
        rows = _read_log(log_path, start_epoch)
        step_rows = _read_log(step_log_path, step, "step")
    atomic_write_text(out_dir / CONFIG_NAME, config_yaml(record) if record is not None
                      else yaml.safe_dump(stored, sort_keys=False))

    workers = tc.workers
    every = tc.checkpoint_every
    log_every = tc.log_every_steps
    loss_names = stepper.loss_names()
    log_fields = (["epoch", "train_loss"] + [f"train_{n}" for n in loss_names if n not in ("loss", "pose")]
                  + VAL_FIELDS + ["lr", "epoch_seconds", "train_samples_per_s"])
    step_fields = ["step", "epoch", "lr"] + loss_names
    tb = _Tensorboard(tc.tensorboard, out_dir / TENSORBOARD_DIR)

    def save(epoch: int) -> None:
        buf = io.BytesIO()
        torch.save({"schema": CHECKPOINT_SCHEMA, "epoch": epoch, "step": step, "model": model.state_dict(),
                    "optimizer": stepper.optimizers["main"].state_dict(), **stepper.state(),
                    "spa": spa_state, "rng": _rng_state(), "config": stored, "joint_names": joint_names,
                    "skeleton_scale_m": skeleton_scale, "pretrained_from": pretrained_from}, buf)
        atomic_write_bytes(ckpt_path, buf.getvalue())

    print(f"train: {tc.backbone}/{tc.head} width {tc.width} ({count_parameters(model) / 1e6:.2f} M params) "
          f"on {device}; adaptation {stepper.method}{' + jo2d' if stepper.jo2d else ''}"
          f"{' + spa' if spa_cfg.enabled else ''}; {len(train_ds)} train / {len(val_ds) if val_ds else 0} val "
          f"samples, {len(real_train) if real_train else 0} real; epochs {start_epoch + 1}..{epochs}, "
          f"{total_steps} steps; {'pretrained ' + pretrained_from if pretrained_from else 'random init'}"
          f"{'; trained on the real photos 2D labels alone' if real_only else ''}", file=sys.stderr)
    val_metrics, real_pck, train_loss = None, None, float("nan")
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        # The order depends on (seed, epoch) only, so a resumed run replays it exactly.
        order = torch.Generator().manual_seed(torch_seed(seed, Stream.TRAIN_ORDER, epoch))
        # Augmentation draws depend on (augmenter seed, epoch, item) alone, in any worker.
        train_ds.set_epoch(epoch)
        if real_train is not None:
            real_train.set_epoch(epoch)
        loader = _loader(train_ds, bs, workers, device, RandomSampler(train_ds, generator=order), drop_last)
        reals = (_real_batches(real_train, tc.real.batch_size or bs, workers, device, seed, epoch)
                 if stepper.needs_real else None)
        stepper.train_mode()
        sums: dict[str, float] = {}
        seen: dict[str, int] = {}           # steps that reported each loss (mixer stages differ)
        count, n_steps = 0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=None)
        for batch in bar:
            factor = lr_factor(tc, step, steps_per_epoch)
            stepper.set_lr(factor)
            syn = _to_device(batch, device)
            real = _to_device(next(reals), device) if reals is not None else None
            losses = stepper.step(syn, real, step, total_steps)
            if not math.isfinite(losses["loss"]):
                raise FloatingPointError(f"training diverged at epoch {epoch + 1}, step {step + 1} "
                                         f"(loss {losses['loss']}); lower train.lr")
            step += 1
            n_steps += 1
            count += len(syn["image"])
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
                seen[k] = seen.get(k, 0) + 1
            if step % log_every == 0:
                lr_now = stepper.optimizers["main"].param_groups[0]["lr"]
                step_rows.append({"step": step, "epoch": epoch + 1, "lr": f"{lr_now:.6g}",
                                  **{k: f"{v:.6g}" for k, v in losses.items()}})
                tb.scalars("step", {**losses, "lr": lr_now}, step)
            bar.set_postfix(loss=f"{sums['loss'] / n_steps:.4f}")
            if step >= total_steps:     # train.steps may end the last epoch early
                break
        means = {k: v / seen[k] for k, v in sums.items()}
        # The 3D pose loss; a run on 2D labels alone has none, and reports its whole loss.
        train_loss = means.get("loss" if real_only else "pose", float("nan"))
        seconds = time.perf_counter() - t0
        val_metrics = None
        if val_ds is not None:
            val_metrics = pose_metrics(*predict(model, val_ds, device, bs, workers, "val"), joint_names)
        real_pck = _real_pck(model, real_eval, device, bs, workers) if real_eval is not None else None
        row = {"epoch": epoch + 1, "train_loss": f"{train_loss:.6f}",
               **{f"train_{k}": f"{v:.6g}" for k, v in means.items() if k not in ("loss", "pose")},
               **val_columns(val_metrics, real_pck),
               "lr": stepper.optimizers["main"].param_groups[0]["lr"], "epoch_seconds": f"{seconds:.2f}",
               "train_samples_per_s": f"{count / seconds:.1f}"}
        rows.append(row)
        _write_log(log_path, log_fields, rows)
        _write_log(step_log_path, step_fields, step_rows)
        tb.scalars("epoch", {k: float(v) for k, v in row.items() if k != "epoch" and v != ""}, epoch + 1)
        if (epoch + 1) % every == 0 or epoch + 1 == epochs:
            save(epoch + 1)
        warn_if_collapsed(val_metrics, f"epoch {epoch + 1}", f"lower train.lr (now {tc.lr:g})")
        val_txt = f", val MPJPE {val_metrics['mpjpe_mm']:.1f} mm" if val_metrics else ""
        real_txt = f", LSP PCK@0.2 {100 * real_pck:.1f} %" if real_pck is not None else ""
        print(f"epoch {epoch + 1}/{epochs}: train pose loss {train_loss:.4f}{val_txt}{real_txt} ({seconds:.1f} s)",
              file=sys.stderr)
    if start_epoch >= epochs and not ckpt_path.exists():
        save(start_epoch)

    summary = {"epochs_completed": max(epochs, start_epoch), "resumed_from_epoch": start_epoch,
               "train_loss": train_loss, "val": val_metrics, "real_pck02": real_pck, "device": str(device),
               "train_samples": len(train_ds), "val_samples": len(val_ds) if val_ds else 0,
               "real_train_samples": len(real_train) if real_train else 0,
               "checkpoint": str(ckpt_path), "log": str(log_path)}
    if spa_cfg.enabled:
        if spa_state is None:
            spa_state = train_spa(tc, seed, model, real_train if real_train is not None else train_ds, spa_target,
                                  joint_names, device, tb)
            save(max(epochs, start_epoch))
        head = da.spa_head_from_state(spa_state).to(device)
        summary["spa"] = {k: v for k, v in spa_state.items() if k not in ("state",)}
        if val_ds is not None:
            summary["val_spa"] = pose_metrics(*predict(model, val_ds, device, bs, workers, "val", post=head),
                                              joint_names)
        if real_eval is not None:
            summary["real_pck02_spa"] = _real_pck(model, real_eval, device, bs, workers, post=head)
    tb.close()
    return summary


def train_from_config(cfg: Config, data_dir: Path, out_dir: Path, resume: bool = True) -> dict:
    """`train` with the sections of a whole configuration (what `synth train` runs)."""
    return train(cfg.train, data_dir, out_dir, seed=cfg.seed, paths=cfg.paths(), record=cfg, resume=resume)


def _real_pck(model, ds, device, bs, workers, post=None) -> float:
    p = predict_items(model, ds, device, bs, workers, "real", post)
    return float(pck_2d_aligned(p["pred"], p["joints_2d_crop"], p["visible_2d"])["pck"])


@torch.enable_grad()
def train_spa(tc: TrainConfig, seed: int, model, ds, target: np.ndarray, joint_names: list[str],
              device: torch.device, tb: _Tensorboard | None = None) -> dict:
    """Skeletal pose adaptation (AHuP): with the network frozen, fit y + f(y) on its predictions
    for `ds` (the real training photos when the run has them) so that their limb-length descriptor
    moves to `target` while f stays small. Returns the state stored in the checkpoint."""
    poses = []
    model.eval()
    with torch.no_grad():
        for batch in _loader(ds, tc.batch_size, tc.workers, device):
            poses.append(model(batch["image"].to(device)).float())
    return fit_spa(torch.cat(poses), target, joint_names, tc.adaptation.spa, seed, tb)


@torch.enable_grad()
def fit_spa(poses: torch.Tensor, target: np.ndarray, joint_names: list[str], sc: SpaConfig, seed: int,
            tb: _Tensorboard | None = None) -> dict:
    """Fit an SPA head on fixed poses (N, J, 3) with the `train.adaptation.spa` settings `sc`;
    returns its checkpoint state with the descriptor distance to `target` before and after and
    the mean joint shift (normalised units)."""
    device = poses.device
    gen = torch.Generator().manual_seed(torch_seed(seed, Stream.SPA_FIT, 0))
    torch.manual_seed(torch_seed(seed, Stream.SPA_FIT, 1))
    head = da.SpaHead(len(joint_names), sc.hidden).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=sc.lr)
    tgt = torch.as_tensor(np.asarray(target), dtype=torch.float32, device=device)
    bs = min(sc.batch_size, len(poses))
    with torch.no_grad():
        before = float((da.limb_descriptor(poses, joint_names) - tgt).norm(dim=1).mean())
    for i in range(sc.steps):
        idx = torch.randint(len(poses), (bs,), generator=gen).to(device)
        loss, parts = da.spa_loss(head, poses[idx], tgt, joint_names, sc.weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if tb is not None:
            tb.scalars("spa", {"loss": loss.item(), **parts}, i + 1)
    head.eval()
    with torch.no_grad():
        adapted = head(poses)
        after = float((da.limb_descriptor(adapted, joint_names) - tgt).norm(dim=1).mean())
        moved = float((adapted - poses).norm(dim=-1).mean())
    print(f"spa: descriptor distance to target {before:.4f} -> {after:.4f}; mean joint shift "
          f"{moved:.4f} (normalised units) over {len(poses)} poses", file=sys.stderr)
    return {"state": {k: v.cpu() for k, v in head.state_dict().items()}, "hidden": sc.hidden,
            "num_joints": len(joint_names), "target": [float(v) for v in np.asarray(target)],
            "descriptor_distance_before": before, "descriptor_distance_after": after,
            "mean_joint_shift": moved, "fit_poses": int(len(poses))}

