"""Training loop of `train.adaptation.method: knowledge_transfer` (the method, its networks and
equations: synth.train.knowledge_transfer).

Stage 1 runs `knowledge_transfer.stage1_epochs` epochs over the training shards (depth network,
mask network and segmentation module G, with the rendered depth and part maps); stage 2 runs
`train.epochs` epochs of the RGB network on real photos without labels, each epoch as many steps as
a synthetic epoch (so the RGB network gets the budget the other methods' networks get), each step
one real batch (and one synthetic batch with `synthetic_rgb`). The learning rate follows
`train.lr_schedule` within each stage.

The trainer's machinery is reused (synth.train.trainer): checkpoint format, RNG states, logs,
loaders, real-photo streams, LR schedule. Outputs in the run folder:
- checkpoint.pt: `model` is the RGB PoseNet, so `synth eval` evaluates a run as any other;
  `modules` holds the depth and mask networks, G, both classifiers and the RGB network's 2D
  heatmap layer; `stage1_epoch` / `epoch` count the completed epochs of each stage.
- stage1.csv: per stage-1 epoch, the losses and the depth / mask networks' own validation MPJPE,
  the chain's (mask network on G's mask of the depth network's prediction) and G's mask IoUs.
- log.csv: per stage-2 epoch, as for the other methods (validation MPJPE of the RGB network,
  PCK@0.2 on train.real.eval_range).
- steps.csv (both stages, `stage` column), config.yaml, tensorboard/.

Resume is exact on the CPU inside and between the stages: orders from (seed, epoch), real orders
from (seed, epoch, pass), augmentation from (seed, epoch, item), LR from the step, and every
module, optimiser and RNG state in the checkpoint.
"""
from __future__ import annotations

import copy
import io
import math
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import RandomSampler
from tqdm import tqdm

from synth.config import ConfigError, dump
from synth.io_utils import InputError, atomic_write_bytes
from synth.train import adaptation as da
from synth.train import knowledge_transfer as ktm
from synth.train import trainer as tr
from synth.train.data import read_dataset_meta, train_val_datasets
from synth.train.metrics import pose_metrics, to_millimetres
from synth.train.models import build_model, count_parameters

STAGE1_LOG_NAME = "stage1.csv"
TEACHER_MODULES = ("depth_net", "mask_net", "segmenter", "modality_classifier")
STAGE1_LOSSES = ["loss", "depth_3d", "mask_3d", "recon", "adv", "modality_acc"]
STAGE2_LOSSES = ["loss", "transfer", "transfer_adv", "domain_acc", "syn_pose", "real_2d"]
KEY = "train.adaptation.knowledge_transfer"


def validate_knowledge_transfer(tc: dict) -> None:
    """One-line ConfigErrors for settings the method cannot use."""
    ad = tc["adaptation"]
    if tc["head"] != "integral":
        raise ConfigError(f"config key 'train.head' = {tc['head']!r}: method knowledge_transfer needs "
                          "'integral' (its networks predict 2D and 3D from volumetric heatmaps)")
    if ad["jo2d"]:
        raise ConfigError(f"config key 'train.adaptation.jo2d' is not used by knowledge_transfer; "
                          f"set '{KEY}.real_2d' to train on the photos' 2D labels")
    if ad["spa"]["enabled"]:
        raise ConfigError("config key 'train.adaptation.spa.enabled' is not supported with knowledge_transfer")


def num_parts_of(data_dir: Path) -> int:
    """K, the part ids of dataset.json "parts" (they must be 0..K-1, 0 the background)."""
    meta = read_dataset_meta(data_dir)
    parts = meta.get("parts")
    path = Path(data_dir) / "dataset.json"
    if not isinstance(parts, dict) or sorted(parts, key=lambda k: int(k) if str(k).isdigit() else -1) \
            != [str(i) for i in range(len(parts))] or len(parts) < 2:
        raise InputError(f"{path}: 'parts' must map the ids 0..K-1 (0 the background) to names; "
                         "knowledge_transfer reads the part maps")
    return len(parts)


def _pool(fmap: torch.Tensor) -> torch.Tensor:
    return da.pool(fmap).float()


class KnowledgeTransfer:
    """The networks, optimisers and one step of each stage. `model` is the deployable RGB PoseNet."""

    def __init__(self, cfg: dict, num_joints: int, num_parts: int, device: torch.device):
        tc = cfg["train"]
        ad = tc["adaptation"]
        self.kt = ad["knowledge_transfer"]
        self.device, self.num_parts, self.size = device, int(num_parts), int(tc["input_size"])
        # Construction order is fixed: the initial weights follow from the seed alone.
        self.depth_net = ktm.TwoDThreeDNet(build_model(tc, num_joints))
        ktm.adapt_input_channels(self.depth_net.net.backbone, 1)
        self.mask_net = ktm.TwoDThreeDNet(build_model(tc, num_joints))
        ktm.adapt_input_channels(self.mask_net.net.backbone, self.num_parts)
        self.segmenter = ktm.PartMaskGenerator(num_joints, self.num_parts, self.size,
                                               int(self.kt["segmenter_width"]))
        channels = self.depth_net.feature_channels
        self.modality_classifier = da.DomainClassifier(channels, int(ad["classifier_hidden"]))
        self.rgb = ktm.TwoDThreeDNet(build_model(tc, num_joints))
        if self.rgb.feature_channels != channels:
            raise ConfigError("knowledge_transfer: the RGB and mask networks' features differ in width")
        self.rgb_domain_classifier = da.DomainClassifier(channels, int(ad["classifier_hidden"]))
        for m in self._all():
            m.to(device)
        lr, wd = float(tc["lr"]), float(tc["weight_decay"])
        domain_lr = float(ad["domain_lr"]) if ad["domain_lr"] else lr
        teachers = [p for m in (self.depth_net, self.mask_net, self.segmenter) for p in m.parameters()]
        self.optimizers = {
            "main": torch.optim.Adam(self.rgb.parameters(), lr=lr, weight_decay=wd),
            "rgb_domain": torch.optim.Adam(self.rgb_domain_classifier.parameters(), lr=domain_lr, weight_decay=wd),
            "teachers": torch.optim.Adam(teachers, lr=lr, weight_decay=wd),
            "modality": torch.optim.Adam(self.modality_classifier.parameters(), lr=domain_lr, weight_decay=wd),
        }
        self.base_lr = {"main": lr, "rgb_domain": domain_lr, "teachers": lr, "modality": domain_lr}
        self.amp = device.type == "cuda" and bool(tc["amp"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.stage = 1

    @property
    def model(self) -> torch.nn.Module:
        return self.rgb.net

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"depth_net": self.depth_net, "mask_net": self.mask_net, "segmenter": self.segmenter,
                "modality_classifier": self.modality_classifier, "rgb_heatmaps_2d": self.rgb.heatmaps_2d,
                "rgb_domain_classifier": self.rgb_domain_classifier}

    def _all(self) -> list[torch.nn.Module]:
        return [self.depth_net, self.mask_net, self.segmenter, self.modality_classifier, self.rgb,
                self.rgb_domain_classifier]

    def state(self) -> dict:
        return {"modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "scaler": self.scaler.state_dict()}

    def load_state(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        for k, m in self.modules.items():
            m.load_state_dict(ckpt["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])

    def set_stage(self, stage: int) -> None:
        """Stage 1: the teachers learn. Stage 2: they are frozen (no gradient, BatchNorm in eval
        mode, so G's and the mask network's outputs and statistics stay fixed); the RGB network
        and its classifier learn."""
        self.stage = stage
        teachers = [self.depth_net, self.mask_net, self.segmenter, self.modality_classifier]
        for m in teachers:
            m.train(stage == 1)
            da.set_requires_grad(m.parameters(), stage == 1)
        for m in (self.rgb, self.rgb_domain_classifier):
            m.train(stage == 2)

    def set_lr(self, factor: float) -> None:
        names = ("teachers", "modality") if self.stage == 1 else ("main", "rgb_domain")
        for n in names:
            for g in self.optimizers[n].param_groups:
                g["lr"] = self.base_lr[n] * factor

    def _autocast(self):
        import contextlib
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def _update(self, loss: torch.Tensor, names: list[str]) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        for n in names:
            self.scaler.step(self.optimizers[n])
        self.scaler.update()

    def stage1_step(self, syn: dict, step: int) -> dict:
        """One joint step of the depth network, the mask network, G and (after the warm-up) the
        modality classifier; `step` counts stage-1 steps from 0."""
        kt, k = self.kt, self.num_parts
        parts, target, visible = syn["parts"], syn["target"], syn["visible_2d"]
        uv_true = ktm.crop_uv(syn["joints_2d_crop"], self.size)
        b = len(parts)
        adv_on = step >= int(kt["adv_warmup_steps"])
        with self._autocast():
            fd = self.depth_net.extract(ktm.depth_input(syn["depth_m"]))
            fm = self.mask_net.extract(ktm.mask_input(parts, k))
            pose_d, uvz_d = self.depth_net.predict(fd)
            pose_m, uvz_m = self.mask_net.predict(fm)
            l_depth = ktm.pose_loss(pose_d, uvz_d, target, uv_true, visible)
            l_mask = ktm.pose_loss(pose_m, uvz_m, target, uv_true, visible)
            log_masks = self.segmenter(torch.cat([uvz_d, uvz_m]))
            l_recon = ktm.scale_invariant_error(log_masks, ktm.smoothed_log_mask(parts.repeat(2, 1, 1), k))
            loss = (float(kt["depth_weight"]) * l_depth + float(kt["mask_weight"]) * l_mask
                    + float(kt["recon_weight"]) * l_recon)
            out = {"depth_3d": l_depth.item(), "mask_3d": l_mask.item(), "recon": l_recon.item()}
            if adv_on:
                modality = torch.cat([torch.zeros(b, dtype=torch.long),
                                      torch.ones(b, dtype=torch.long)]).to(self.device)
                logits = self.modality_classifier(da.grad_reverse(torch.cat([_pool(fd), _pool(fm)]), 1.0))
                l_adv = da.domain_ce(logits, modality)
                loss = loss + float(kt["adv_weight"]) * l_adv
                out.update(adv=l_adv.item(), modality_acc=(logits.detach().argmax(1) == modality).float().mean().item())
        self._update(loss, ["teachers", "modality"] if adv_on else ["teachers"])
        out["loss"] = loss.item()
        return out

    @torch.no_grad()
    def transfer_target(self, uvz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P̂, the mask network's feature map) for predicted joint coordinates uvz: G's mask
        read by the mask network, with no gradient."""
        fm = self.mask_net.extract(ktm.soft_mask(self.segmenter(uvz.float())))
        return self.mask_net.predict(fm)[0].float(), fm

    def stage2_step(self, real: dict, syn: dict | None) -> dict:
        """One step of the RGB network: toward P̂ on the real batch, the feature classifier behind
        gradient reversal, and the options (`syn`: a labelled synthetic batch; real 2D labels)."""
        kt = self.kt
        n = len(real["image"])
        x = real["image"] if syn is None else torch.cat([real["image"], syn["image"]])
        with self._autocast():
            fmap = self.rgb.extract(x)
            pose, uvz = self.rgb.predict(fmap)
            target, fm = self.transfer_target(uvz[:n].detach())
            l_transfer = ktm.smooth_l1(pose[:n], target)
            domain = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)]).to(self.device)
            logits = self.rgb_domain_classifier(torch.cat([da.grad_reverse(_pool(fmap[:n]), 1.0), _pool(fm)]))
            l_adv = da.domain_ce(logits, domain)
            loss = float(kt["transfer_weight"]) * l_transfer + float(kt["transfer_adv_weight"]) * l_adv
            out = {"transfer": l_transfer.item(), "transfer_adv": l_adv.item(),
                   "domain_acc": (logits.detach().argmax(1) == domain).float().mean().item()}
            if syn is not None:
                l_syn = ktm.pose_loss(pose[n:], uvz[n:], syn["target"], ktm.crop_uv(syn["joints_2d_crop"], self.size),
                                      syn["visible_2d"])
                loss = loss + float(kt["synthetic_rgb_weight"]) * l_syn
                out["syn_pose"] = l_syn.item()
            if kt["real_2d"]:
                l_2d = ktm.smooth_l1(uvz[:n, :, :2], ktm.crop_uv(real["joints_2d_crop"], self.size),
                                     real["visible_2d"])
                loss = loss + float(kt["real_2d_weight"]) * l_2d
                out["real_2d"] = l_2d.item()
        self._update(loss, ["main", "rgb_domain"])
        out["loss"] = loss.item()
        return out


@torch.no_grad()
def evaluate_teachers(kt: KnowledgeTransfer, ds, batch_size: int, workers: int = 0) -> dict:
    """Stage 1's networks on a dataset with maps (held-out shards): the depth and mask networks'
    own 3D metrics, the chain's (mask network on G's mask of the depth network's 2D and depths:
    what stage 2 does with the RGB network's prediction), and G's mask IoUs (argmax of its mask
    against the rendered ids) from the depth network's prediction (`segmenter`) and from the
    labelled 2D joints and depths (`segmenter_from_labels`: G alone)."""
    nets = (kt.depth_net, kt.mask_net, kt.segmenter)
    modes = [m.training for m in nets]
    for m in nets:
        m.eval()
    preds: dict[str, list] = {"depth": [], "mask": [], "chain": [], "target": [], "scale": []}
    counts = counts_labels = None
    half = kt.depth_net.net.head.half_extent
    for batch in tr._loader(ds, batch_size, workers, kt.device):
        batch = tr._to_device(batch, kt.device)
        pose_d, uvz_d = kt.depth_net(ktm.depth_input(batch["depth_m"]))
        pose_m, _ = kt.mask_net(ktm.mask_input(batch["parts"], kt.num_parts))
        log_mask = kt.segmenter(uvz_d)
        chain, _ = kt.mask_net(ktm.soft_mask(log_mask))
        counts = ktm.add_counts(counts, ktm.mask_iou(log_mask, batch["parts"], kt.num_parts))
        from_labels = kt.segmenter(ktm.label_uvz(batch["joints_2d_crop"], batch["target"], kt.size, half))
        counts_labels = ktm.add_counts(counts_labels, ktm.mask_iou(from_labels, batch["parts"], kt.num_parts))
        for name, v in (("depth", pose_d), ("mask", pose_m), ("chain", chain), ("target", batch["target"]),
                        ("scale", batch["scale"])):
            preds[name].append(v.float().cpu())
    for m, mode in zip(nets, modes):
        m.train(mode)
    cat = {k: torch.cat(v).numpy() for k, v in preds.items()}
    gt = to_millimetres(cat["target"], cat["scale"], ds.root_index)
    result = {name: pose_metrics(to_millimetres(cat[name], cat["scale"], ds.root_index), gt, ds.joint_names)
              for name in ("depth", "mask", "chain")}
    result["segmenter"] = ktm.iou_summary(counts)
    result["segmenter_from_labels"] = ktm.iou_summary(counts_labels)
    return result


def unlabelled_photos(cfg: dict, augment=None):
    """Stage 2's real photos: `knowledge_transfer.real_photos` ('FOLDER' or 'FOLDER:a-b', 1-based)
    or, when null, the images train.real.train_range of train.real.folder (LSP 1-800 by default).
    Without `real_2d` their labels are not read: a PhotoFolderDataset (for an LSP folder the crop
    is taken around the annotated joints, as a person detector's box would be; the joints
    themselves never reach a loss). With `real_2d`, an LspDataset with the 2D labels."""
    from synth.train.real_data import LspDataset, PhotoFolderDataset, parse_image_range, split_real_spec
    tc = cfg["train"]
    kt = tc["adaptation"]["knowledge_transfer"]
    size = int(tc["input_size"])
    if kt["real_photos"]:
        folder, text = split_real_spec(str(kt["real_photos"]))
        where = f"config key '{KEY}.real_photos'"
    else:
        folder, text = tr.real_folder(cfg), None
        where = "config key 'train.real.folder'"
    if not folder.is_dir():
        raise InputError(f"{folder}: photo folder for knowledge_transfer not found ({where})")
    photo_set = LspDataset if kt["real_2d"] else PhotoFolderDataset
    ds = photo_set(folder, size, augment=augment)
    n = len(ds.indices)
    if text is not None:
        ds.indices = parse_image_range(text, n, str(folder))
    elif not kt["real_photos"]:
        r = tr._range(cfg, "train_range")
        if r.stop > n:
            raise InputError(f"{folder}: train.real.train_range {[r.start, r.stop]} exceeds its {n} photos")
        ds.indices = list(r)
    # The photos that give PCK@0.2 (train.real.eval_range of train.real.folder) are never trained on.
    held = tr._range(cfg, "eval_range")
    if folder.resolve() == tr.real_folder(cfg).resolve() and any(i in held for i in ds.indices):
        first = min(i for i in ds.indices if i in held)
        raise ConfigError(f"{where}: the stage-2 photos include image {first + 1} of {folder}, which "
                          f"train.real.eval_range {[held.start, held.stop]} holds out for evaluation")
    return ds


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


# Gradients are switched on explicitly (another stage in the process may have turned them off).
@torch.enable_grad()
def train_knowledge_transfer(cfg: dict, data_dir: Path, out_dir: Path, resume: bool = True,
                             stop_after_epochs: int | None = None) -> dict:
    """Both stages (see the module doc); `stop_after_epochs` ends the run after that many epochs
    of both stages together, checkpoint written, as an interrupted run would stop."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    cfg = copy.deepcopy(cfg)
    tc, seed = cfg["train"], int(cfg["seed"])
    kc = tc["adaptation"]["knowledge_transfer"]
    validate_knowledge_transfer(tc)
    num_parts = num_parts_of(data_dir)
    train_ds, val_ds = train_val_datasets(data_dir, tc, tr._augmenter(cfg, 0), maps=True)
    joint_names = train_ds.joint_names
    device = tr.resolve_device(tc["device"])
    if int(tc["threads"]) > 0:
        torch.set_num_threads(int(tc["threads"]))
    ckpt_path, log_path = out_dir / tr.CHECKPOINT_NAME, out_dir / tr.LOG_NAME
    stage1_path, step_log_path = out_dir / STAGE1_LOG_NAME, out_dir / tr.STEP_LOG_NAME

    tr.seed_everything(seed)
    kt = KnowledgeTransfer(cfg, len(joint_names), num_parts, device)
    real_train = unlabelled_photos(cfg, tr._augmenter(cfg, 1))
    _, real_eval = tr.real_datasets(cfg, False) if tc["real"]["log_pck"] else (None, None)

    s1_epochs, s2_epochs = int(kc["stage1_epochs"]), int(tc["epochs"])
    s1_done, s2_done, step = 0, 0, 0
    rows1, rows2, step_rows = [], [], []
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume and ckpt_path.exists():
        ckpt = tr.load_checkpoint(ckpt_path)
        tr._check_resume(ckpt, cfg, ckpt_path, joint_names, data_dir)
        old = ckpt["config"]["train"]
        for key, a, b in (("train.model", old.get("model"), tc.get("model")),
                          (f"{KEY}.segmenter_width", old["adaptation"]["knowledge_transfer"]["segmenter_width"],
                           kc["segmenter_width"])):
            if a != b:
                raise ConfigError(f"{ckpt_path}: config key '{key}' = {b!r} differs from the checkpoint's {a!r}; "
                                  "use a new output folder or no resume")
        s1_done, s2_done, step = int(ckpt["stage1_epoch"]), int(ckpt["epoch"]), int(ckpt["step"])
        if s1_done > s1_epochs or (s2_done > 0 and s1_done != s1_epochs):
            raise ConfigError(f"{ckpt_path}: config key '{KEY}.stage1_epochs' = {s1_epochs} differs from the "
                              f"{s1_done} stage-1 epochs of the checkpoint; use a new output folder or no resume")
        kt.load_state(ckpt)
        tr._set_rng_state(ckpt["rng"])
        rows1 = tr._read_log(stage1_path, s1_done)
        rows2 = tr._read_log(log_path, s2_done)
        step_rows = tr._read_log(step_log_path, step, "step")
    dump(cfg, out_dir / tr.CONFIG_NAME)

    bs, workers = int(tc["batch_size"]), int(tc["workers"])
    real_bs = int(tc["real"]["batch_size"] or bs)
    every = max(int(tc["checkpoint_every"]), 1)
    log_every = max(int(tc["log_every_steps"]), 1)
    drop_last = len(train_ds) % bs == 1 and len(train_ds) > 1
    spe = len(train_ds) // bs if drop_last else math.ceil(len(train_ds) / bs)
    s1_schedule = {**tc, "epochs": s1_epochs}
    fields1 = (["epoch", "train_loss"] + [f"train_{n}" for n in STAGE1_LOSSES[1:]]
               + ["val_depth_mpjpe_mm", "val_mask_mpjpe_mm", "val_chain_mpjpe_mm", "val_seg_fg_iou",
                  "val_seg_miou", "val_seg_part_miou", "lr", "epoch_seconds", "train_samples_per_s"])
    fields2 = (["epoch", "train_loss"] + [f"train_{n}" for n in STAGE2_LOSSES[1:]]
               + ["val_mpjpe_mm", "val_pa_mpjpe_mm", "val_pck150", "val_auc", "real_pck02",
                  "lr", "epoch_seconds", "train_samples_per_s"])
    step_fields = ["step", "stage", "epoch", "lr"] + list(dict.fromkeys(STAGE1_LOSSES + STAGE2_LOSSES))
    tb = tr._Tensorboard(bool(tc["tensorboard"]), out_dir / tr.TENSORBOARD_DIR)

    def save() -> None:
        buf = io.BytesIO()
        torch.save({"schema": tr.CHECKPOINT_SCHEMA, "epoch": s2_done, "stage1_epoch": s1_done, "step": step,
                    "model": kt.model.state_dict(), "optimizer": kt.optimizers["main"].state_dict(),
                    **kt.state(), "spa": None, "rng": tr._rng_state(), "config": cfg,
                    "joint_names": joint_names, "num_parts": num_parts}, buf)
        atomic_write_bytes(ckpt_path, buf.getvalue())

    print(f"train: knowledge_transfer, {tc['backbone']}/integral width {tc['width']} "
          f"({count_parameters(kt.model) / 1e6:.2f} M params per pose network, G "
          f"{count_parameters(kt.segmenter) / 1e6:.2f} M) on {device}; {len(train_ds)} train / "
          f"{len(val_ds) if val_ds else 0} val samples, {len(real_train)} unlabelled photos"
          f"{' (+ 2D labels)' if kc['real_2d'] else ''}{' + synthetic RGB' if kc['synthetic_rgb'] else ''}; "
          f"stage 1 {f'epochs {s1_done + 1}..{s1_epochs}' if s1_done < s1_epochs else 'done'}, "
          f"stage 2 {f'epochs {s2_done + 1}..{s2_epochs}' if s2_done < s2_epochs else 'done'}", file=sys.stderr)
    teacher_val, val_metrics, real_pck, train_loss = None, None, None, float("nan")
    start = {"stage1_epoch": s1_done, "epoch": s2_done}
    for g in range(s1_done + s2_done, s1_epochs + s2_epochs):
        if stop_after_epochs is not None and g >= stop_after_epochs:
            break
        stage = 1 if g < s1_epochs else 2
        kt.set_stage(stage)
        t0 = time.perf_counter()
        order = torch.Generator().manual_seed(seed * 1_000_003 + g)
        train_ds.set_epoch(g)
        train_ds.maps = stage == 1
        use_syn = stage == 1 or bool(kc["synthetic_rgb"])
        batches = (tr._loader(train_ds, bs, workers, device, RandomSampler(train_ds, generator=order), drop_last)
                   if use_syn else range(spe))
        reals = None
        if stage == 2:
            real_train.set_epoch(g)
            reals = tr._real_batches(real_train, real_bs, workers, device, seed, g)
        sums: dict[str, float] = {}
        seen: dict[str, int] = {}
        count = 0
        epoch_in_stage = g + 1 if stage == 1 else g + 1 - s1_epochs
        n_epochs = s1_epochs if stage == 1 else s2_epochs
        bar = tqdm(batches, desc=f"stage {stage} epoch {epoch_in_stage}/{n_epochs}", leave=False, disable=None)
        for batch in bar:
            if stage == 1:
                kt.set_lr(tr.lr_factor(s1_schedule, step, spe))
                syn = tr._to_device(batch, device)
                losses = kt.stage1_step(syn, step)
                count += len(syn["image"])
            else:
                kt.set_lr(tr.lr_factor(tc, step - s1_epochs * spe, spe))
                syn = tr._to_device(batch, device) if use_syn else None
                real = tr._to_device(next(reals), device)
                losses = kt.stage2_step(real, syn)
                count += len(real["image"]) + (len(syn["image"]) if syn is not None else 0)
            if not math.isfinite(losses["loss"]):
                raise FloatingPointError(f"knowledge_transfer diverged in stage {stage}, epoch {epoch_in_stage}, "
                                         f"step {step + 1} (loss {losses['loss']}); lower train.lr")
            step += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
                seen[k] = seen.get(k, 0) + 1
            if step % log_every == 0:
                lr_now = kt.optimizers["teachers" if stage == 1 else "main"].param_groups[0]["lr"]
                step_rows.append({"step": step, "stage": stage, "epoch": epoch_in_stage, "lr": f"{lr_now:.6g}",
                                  **{k: _fmt(v) for k, v in losses.items()}})
                tb.scalars(f"stage{stage}_step", {**losses, "lr": lr_now}, step)
            bar.set_postfix(loss=f"{sums['loss'] / seen['loss']:.4f}")
        means = {k: v / seen[k] for k, v in sums.items()}
        train_loss = means.get("loss", float("nan"))
        seconds = time.perf_counter() - t0
        lr_now = kt.optimizers["teachers" if stage == 1 else "main"].param_groups[0]["lr"]
        common = {"epoch": epoch_in_stage, "train_loss": f"{train_loss:.6f}",
                  **{f"train_{k}": f"{v:.6g}" for k, v in means.items() if k != "loss"},
                  "lr": f"{lr_now:.6g}", "epoch_seconds": f"{seconds:.2f}",
                  "train_samples_per_s": f"{count / seconds:.1f}"}
        if stage == 1:
            s1_done += 1
            teacher_val = evaluate_teachers(kt, val_ds, bs, workers) if val_ds is not None else None
            tv = teacher_val or {}
            row = {**common,
                   **({"val_depth_mpjpe_mm": f"{tv['depth']['mpjpe_mm']:.2f}",
                       "val_mask_mpjpe_mm": f"{tv['mask']['mpjpe_mm']:.2f}",
                       "val_chain_mpjpe_mm": f"{tv['chain']['mpjpe_mm']:.2f}",
                       "val_seg_fg_iou": f"{tv['segmenter']['fg_iou']:.4f}",
                       "val_seg_miou": f"{tv['segmenter']['miou']:.4f}",
                       "val_seg_part_miou": f"{tv['segmenter']['part_miou']:.4f}"} if tv else {})}
            rows1.append(row)
            tr._write_log(stage1_path, fields1, rows1)
            txt = (f", val MPJPE depth {tv['depth']['mpjpe_mm']:.1f} / mask {tv['mask']['mpjpe_mm']:.1f} mm, "
                   f"G IoU {tv['segmenter']['fg_iou']:.3f}" if tv else "")
        else:
            s2_done += 1
            val_ds_rgb = val_ds
            val_metrics = None
            if val_ds_rgb is not None:
                val_ds_rgb.maps = False
                val_metrics = pose_metrics(*tr.predict(kt.model, val_ds_rgb, device, bs, workers, "val"), joint_names)
                val_ds_rgb.maps = True
            real_pck = tr._real_pck(kt.model, real_eval, device, bs, workers) if real_eval is not None else None
            row = {**common,
                   "val_mpjpe_mm": f"{val_metrics['mpjpe_mm']:.2f}" if val_metrics else "",
                   "val_pa_mpjpe_mm": f"{val_metrics['pa_mpjpe_mm']:.2f}" if val_metrics else "",
                   "val_pck150": f"{val_metrics['pck150']:.4f}" if val_metrics else "",
                   "val_auc": f"{val_metrics['auc']:.4f}" if val_metrics else "",
                   "real_pck02": f"{real_pck:.4f}" if real_pck is not None else ""}
            rows2.append(row)
            tr._write_log(log_path, fields2, rows2)
            txt = ((f", val MPJPE {val_metrics['mpjpe_mm']:.1f} mm" if val_metrics else "")
                   + (f", LSP PCK@0.2 {100 * real_pck:.1f} %" if real_pck is not None else ""))
        tr._write_log(step_log_path, step_fields, step_rows)
        tb.scalars(f"stage{stage}_epoch", {k: float(v) for k, v in row.items() if k != "epoch" and v != ""}, g + 1)
        if (g + 1) % every == 0 or g + 1 in (s1_epochs, s1_epochs + s2_epochs) or g + 1 == stop_after_epochs:
            save()
        print(f"stage {stage} epoch {epoch_in_stage}/{n_epochs}: train loss {train_loss:.4f}{txt} ({seconds:.1f} s)",
              file=sys.stderr)
    if not ckpt_path.exists():
        save()
    tb.close()
    return {"method": "knowledge_transfer", "stage1_epochs_completed": s1_done, "epochs_completed": s2_done,
            "resumed_from": start, "train_loss": train_loss, "val": val_metrics,
            "teachers_val": teacher_val, "real_pck02": real_pck, "device": str(device),
            "train_samples": len(train_ds), "val_samples": len(val_ds) if val_ds else 0,
            "real_train_samples": len(real_train), "checkpoint": str(ckpt_path), "log": str(log_path)}


def load_knowledge_transfer(checkpoint: Path, device: str = "cpu") -> tuple[KnowledgeTransfer, dict]:
    """The networks of a knowledge_transfer checkpoint (to evaluate the stage-1 networks)."""
    ckpt = tr.load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    if cfg["train"]["adaptation"]["method"] != "knowledge_transfer" or "num_parts" not in ckpt:
        raise InputError(f"{checkpoint}: not a knowledge_transfer checkpoint")
    kt = KnowledgeTransfer(cfg, len(ckpt["joint_names"]), int(ckpt["num_parts"]), tr.resolve_device(device))
    kt.load_state(ckpt)
    kt.set_stage(2)
    return kt, ckpt
