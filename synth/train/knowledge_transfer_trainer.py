"""Training loop of `train.adaptation.method: knowledge_transfer` (the method, its networks and
equations: synth.train.knowledge_transfer). `synth train` reaches it through
synth.train.trainer.train, where this module registers its loop (OWN_LOOPS).

Stage 1 runs `knowledge_transfer.stage1_epochs` epochs over the training shards (depth network,
mask network and segmentation module G, with the rendered depth and part maps); stage 2 trains the
RGB network on real photos without labels for `train.steps` steps when set (as every other run:
the budget of the data-value benchmark's rows), else `train.epochs` epochs of as many steps as a
synthetic epoch; each step one real batch (and one synthetic batch with `synthetic_rgb`). The
learning rate follows `train.lr_schedule` within each stage.

Starts: the RGB network is built as `train` builds its model (TRAIN_INIT stream, then the
`train.pretrained` backbone), so it starts where a synthetic-only run of the same configuration
starts; the depth and mask networks take the same backbone weights with their first convolution
inflated to their inputs (synth.train.knowledge_transfer.adapt_input_channels), their heads and G
and the classifiers their own KT_INIT streams. `train.freeze_bn` applies to the RGB network (its
inputs are photos, like the pretrained statistics'); the depth and mask networks always learn
their BatchNorm statistics, their inputs being unlike ImageNet's.

Random streams (synth.rng): stage 1 draws its order (KT_STAGE1_ORDER) and crops
(KT_STAGE1_AUGMENT) of its own; stage 2's synthetic order, crops, appearance and real-photo order
are those a plain run draws for the same epoch (TRAIN_ORDER, TRAIN_AUGMENT, TRAIN_APPEARANCE,
TRAIN_REAL_ORDER). Appearance augmentation (an RGB matter) is used in stage 2 only.

The trainer's machinery is reused (synth.train.trainer): checkpoint format, RNG states, logs,
loaders, real-photo streams, LR schedule. Outputs in the run folder:
- checkpoint.pt: `model` is the RGB PoseNet, so `synth eval` / `synth predict` use a run as any
  other; `modules` holds the depth and mask networks (PoseNets with inflated first convolutions),
  G and both classifiers; `stage1_epoch` / `epoch` count the completed epochs of each stage.
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

import io
import math
import sys
import time
from pathlib import Path

import torch
import yaml
from torch.utils.data import RandomSampler
from tqdm import tqdm

from synth.config import Config, ConfigError, Paths, TrainConfig, config_yaml, load_config
from synth.io_utils import InputError, atomic_write_bytes, atomic_write_text
from synth.rng import Stream, torch_seed
from synth.train import adaptation as da
from synth.train import knowledge_transfer as ktm
from synth.train import trainer as tr
from synth.train.appearance import build_appearance
from synth.train.augment import build_augmenter
from synth.train.data import read_dataset_meta, train_val_datasets
from synth.train.metrics import pose_metrics, to_millimetres
from synth.train.models import PoseNet, build_model, count_parameters, normalised_from_crop_pixels
from synth.train.pretrained import load_pretrained_backbone

METHOD = "knowledge_transfer"
STAGE1_LOG_NAME = "stage1.csv"
MODULE_NAMES = ("depth_net", "mask_net", "segmenter", "modality_classifier", "rgb_domain_classifier")
# KT_INIT stream index of each module built from random weights (the RGB network: TRAIN_INIT).
INIT_INDEX = {name: i for i, name in enumerate(MODULE_NAMES)}
STAGE1_LOSSES = ["loss", "depth_3d", "mask_3d", "recon", "adv", "modality_acc"]
STAGE2_LOSSES = ["loss", "transfer", "transfer_adv", "domain_acc", "syn_pose", "real_2d"]
KEY = "train.adaptation.knowledge_transfer"


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


def _seeded(seed: int, name: str, build):
    """`build()` with torch's global generator at the KT_INIT stream of the module `name`, the
    global state left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(seed, Stream.KT_INIT, INIT_INDEX[name]))
        return build()


class KnowledgeTransfer:
    """The networks, optimisers and one step of each stage. `model` is the deployable RGB PoseNet.

    `pretrained`: load `train.pretrained` onto the three backbones (a fresh run; a resumed one
    takes every weight from its checkpoint). Call after `trainer.seed_everything(seed)`."""

    def __init__(self, tc: TrainConfig, num_joints: int, num_parts: int, device: torch.device, seed: int,
                 pretrained: bool = True):
        ad = tc.adaptation
        self.kt = ad.knowledge_transfer
        self.device, self.num_parts, self.size = device, int(num_parts), tc.input_size
        self.freeze_bn = tc.freeze_bn
        self.memory_format = tr.memory_format(device, tc)
        # The RGB network first, from TRAIN_INIT as `train` builds its model.
        self.rgb = build_model(tc, num_joints)
        self.pretrained_from = load_pretrained_backbone(self.rgb, tc) if pretrained else None

        def teacher(name: str, greys) -> PoseNet:
            net = _seeded(seed, name, lambda: build_model(tc, num_joints))
            if pretrained:
                load_pretrained_backbone(net, tc)
            ktm.adapt_input_channels(net.backbone, greys)
            return net

        self.depth_net = teacher("depth_net", ktm.DEPTH_GREY)
        self.mask_net = teacher("mask_net", ktm.mask_grey_levels(self.num_parts))
        self.segmenter = _seeded(seed, "segmenter", lambda: ktm.PartMaskGenerator(
            num_joints, self.num_parts, self.size, self.kt.segmenter_width))
        channels = self.rgb.feature_channels
        self.modality_classifier = _seeded(seed, "modality_classifier",
                                           lambda: da.DomainClassifier(channels, ad.classifier_hidden))
        self.rgb_domain_classifier = _seeded(seed, "rgb_domain_classifier",
                                             lambda: da.DomainClassifier(channels, ad.classifier_hidden))
        for m in self._all():
            m.to(device)
        for m in (self.rgb, self.depth_net, self.mask_net):
            m.to(memory_format=self.memory_format)
        self.rgb_backbone_bns = [m for m in self.rgb.backbone.modules()
                                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        lr, wd = tc.lr, tc.weight_decay
        domain_lr = ad.domain_lr if ad.domain_lr else lr
        teachers = [p for m in (self.depth_net, self.mask_net, self.segmenter) for p in m.parameters()]
        self.optimizers = {
            "main": torch.optim.Adam(self.rgb.parameters(), lr=lr, weight_decay=wd),
            "rgb_domain": torch.optim.Adam(self.rgb_domain_classifier.parameters(), lr=domain_lr, weight_decay=wd),
            "teachers": torch.optim.Adam(teachers, lr=lr, weight_decay=wd),
            "modality": torch.optim.Adam(self.modality_classifier.parameters(), lr=domain_lr, weight_decay=wd),
        }
        self.base_lr = {"main": lr, "rgb_domain": domain_lr, "teachers": lr, "modality": domain_lr}
        self.amp = device.type == "cuda" and tc.amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.stage = 1

    @property
    def model(self) -> PoseNet:
        return self.rgb

    @property
    def modules(self) -> dict[str, torch.nn.Module]:
        return {name: getattr(self, name) for name in MODULE_NAMES}

    def _all(self) -> list[torch.nn.Module]:
        return [self.rgb, *self.modules.values()]

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
        and its classifier learn (the RGB backbone's BatchNorm statistics fixed with freeze_bn)."""
        self.stage = stage
        teachers = [self.depth_net, self.mask_net, self.segmenter, self.modality_classifier]
        for m in teachers:
            m.train(stage == 1)
            da.set_requires_grad(m.parameters(), stage == 1)
        for m in (self.rgb, self.rgb_domain_classifier):
            m.train(stage == 2)
        if stage == 2 and self.freeze_bn:
            for m in self.rgb_backbone_bns:
                m.eval()

    def set_lr(self, factor: float) -> None:
        names = ("teachers", "modality") if self.stage == 1 else ("main", "rgb_domain")
        for n in names:
            for g in self.optimizers[n].param_groups:
                g["lr"] = self.base_lr[n] * factor

    def _autocast(self):
        return tr.autocast(self.amp)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)

    def _update(self, loss: torch.Tensor, names: list[str]) -> None:
        tr.scaled_update(self.scaler, self.optimizers, loss, names)

    def stage1_step(self, syn: dict, step: int) -> dict:
        """One joint step of the depth network, the mask network, G and (after the warm-up) the
        modality classifier; `step` counts stage-1 steps from 0."""
        kt, k = self.kt, self.num_parts
        parts, target, visible = syn["parts"], syn["target"], syn["visible_2d"]
        uv_true = normalised_from_crop_pixels(syn["joints_2d_crop"].float(), self.size)
        b = len(parts)
        adv_on = step >= kt.adv_warmup_steps
        with self._autocast():
            fd = self.depth_net.extract(self._input(ktm.depth_input(syn["depth_m"])))
            fm = self.mask_net.extract(self._input(ktm.mask_input(parts, k)))
            pose_d, uvz_d = ktm.pose_and_uvz(self.depth_net, fd)
            pose_m, uvz_m = ktm.pose_and_uvz(self.mask_net, fm)
            l_depth = ktm.pose_loss(pose_d, uvz_d, target, uv_true, visible)
            l_mask = ktm.pose_loss(pose_m, uvz_m, target, uv_true, visible)
            log_masks = self.segmenter(torch.cat([uvz_d, uvz_m]))
            l_recon = ktm.scale_invariant_error(log_masks, ktm.smoothed_log_mask(parts.repeat(2, 1, 1), k))
            loss = kt.depth_weight * l_depth + kt.mask_weight * l_mask + kt.recon_weight * l_recon
            out = {"depth_3d": l_depth.item(), "mask_3d": l_mask.item(), "recon": l_recon.item()}
            if adv_on:
                modality = torch.cat([torch.zeros(b, dtype=torch.long),
                                      torch.ones(b, dtype=torch.long)]).to(self.device)
                logits = self.modality_classifier(da.grad_reverse(torch.cat([_pool(fd), _pool(fm)]), 1.0))
                l_adv = da.domain_ce(logits, modality)
                loss = loss + kt.adv_weight * l_adv
                out.update(adv=l_adv.item(), modality_acc=(logits.detach().argmax(1) == modality).float().mean().item())
        self._update(loss, ["teachers", "modality"] if adv_on else ["teachers"])
        out["loss"] = loss.item()
        return out

    @torch.no_grad()
    def transfer_target(self, uvz: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P̂, the mask network's feature map) for predicted joint coordinates uvz: G's mask
        read by the mask network, with no gradient."""
        fm = self.mask_net.extract(self._input(ktm.soft_mask(self.segmenter(uvz.float()))))
        return ktm.pose_and_uvz(self.mask_net, fm)[0], fm

    def stage2_step(self, real: dict, syn: dict | None) -> dict:
        """One step of the RGB network: toward P̂ on the real batch, the feature classifier behind
        gradient reversal, and the options (`syn`: a labelled synthetic batch; real 2D labels)."""
        kt = self.kt
        n = len(real["image"])
        x = real["image"] if syn is None else torch.cat([real["image"], syn["image"]])
        with self._autocast():
            fmap = self.rgb.extract(self._input(x))
            pose, uvz = ktm.pose_and_uvz(self.rgb, fmap)
            target, fm = self.transfer_target(uvz[:n].detach())
            l_transfer = ktm.smooth_l1(pose[:n], target)
            domain = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)]).to(self.device)
            logits = self.rgb_domain_classifier(torch.cat([da.grad_reverse(_pool(fmap[:n]), 1.0), _pool(fm)]))
            l_adv = da.domain_ce(logits, domain)
            loss = kt.transfer_weight * l_transfer + kt.transfer_adv_weight * l_adv
            out = {"transfer": l_transfer.item(), "transfer_adv": l_adv.item(),
                   "domain_acc": (logits.detach().argmax(1) == domain).float().mean().item()}
            if syn is not None:
                uv_syn = normalised_from_crop_pixels(syn["joints_2d_crop"].float(), self.size)
                l_syn = ktm.pose_loss(pose[n:], uvz[n:], syn["target"], uv_syn, syn["visible_2d"])
                loss = loss + kt.synthetic_rgb_weight * l_syn
                out["syn_pose"] = l_syn.item()
            if kt.real_2d:
                uv_real = normalised_from_crop_pixels(real["joints_2d_crop"].float(), self.size)
                l_2d = ktm.smooth_l1(uvz[:n, :, :2], uv_real, real["visible_2d"])
                loss = loss + kt.real_2d_weight * l_2d
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
    half = kt.depth_net.head.half_extent
    for batch in tr._loader(ds, batch_size, workers, kt.device):
        batch = tr._to_device(batch, kt.device)
        pose_d, uvz_d = ktm.pose_and_uvz(kt.depth_net, kt.depth_net.extract(ktm.depth_input(batch["depth_m"])))
        pose_m, _ = ktm.pose_and_uvz(kt.mask_net, kt.mask_net.extract(ktm.mask_input(batch["parts"], kt.num_parts)))
        log_mask = kt.segmenter(uvz_d)
        chain, _ = kt.transfer_target(uvz_d)
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


def unlabelled_photos(tc: TrainConfig, paths: Paths, augment=None):
    """Stage 2's real photos: `knowledge_transfer.real_photos` ('FOLDER' or 'FOLDER:a-b', 1-based)
    or, when null, the images train.real.train_range of train.real.folder (LSP 1-800 by default).
    Without `real_2d` their labels are not read: a PhotoFolderDataset (for an LSP folder the crop
    is taken around the annotated joints, as a person detector's box would be; the joints
    themselves never reach a loss). With `real_2d`, an LspDataset with the 2D labels."""
    from synth.train.real_data import LspDataset, PhotoFolderDataset, parse_image_range, split_real_spec
    kt = tc.adaptation.knowledge_transfer
    eval_folder = tr.real_folder(tc.real, paths.data)
    if kt.real_photos:
        folder, text = split_real_spec(kt.real_photos)
        where = f"config key '{KEY}.real_photos'"
    else:
        folder, text = eval_folder, None
        where = "config key 'train.real.folder'"
    if not folder.is_dir():
        raise InputError(f"{folder}: photo folder for knowledge_transfer not found ({where})")
    photo_set = LspDataset if kt.real_2d else PhotoFolderDataset
    ds = photo_set(folder, tc.input_size, augment=augment)
    n = len(ds.indices)
    if text is not None:
        ds.indices = parse_image_range(text, n, str(folder))
    elif not kt.real_photos:
        r = range(*tc.real.train_range)
        if r.stop > n:
            raise InputError(f"{folder}: train.real.train_range {[r.start, r.stop]} exceeds its {n} photos")
        ds.indices = list(r)
    # The photos that give PCK@0.2 (train.real.eval_range of train.real.folder) are never trained on.
    held = range(*tc.real.eval_range)
    if folder.resolve() == eval_folder.resolve() and any(i in held for i in ds.indices):
        first = min(i for i in ds.indices if i in held)
        raise ConfigError(f"{where}: the stage-2 photos include image {first + 1} of {folder}, which "
                          f"train.real.eval_range {[held.start, held.stop]} holds out for evaluation")
    return ds


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


# Gradients are switched on explicitly (another stage in the process may have turned them off).
@torch.enable_grad()
def train_knowledge_transfer(tc: TrainConfig, data_dir: Path | None, out_dir: Path, *, seed: int = 0,
                             paths: Paths | None = None, record: Config | None = None, resume: bool = True,
                             stop_after_epochs: int | None = None) -> dict:
    """Both stages (see the module doc), with synth.train.trainer.train's arguments;
    `stop_after_epochs` ends the run after that many epochs of both stages together, checkpoint
    written, as an interrupted run would stop."""
    if tc.adaptation.method != METHOD:
        raise ConfigError(f"config key 'train.adaptation.method' = {tc.adaptation.method!r}: this loop trains "
                          f"{METHOD!r}")
    if data_dir is None:
        raise InputError("synth train: give --data DATASET (knowledge_transfer trains on rendered shards)")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    paths = paths if paths is not None else Config().paths()
    stored = (record.model_dump(mode="json") if record is not None
              else {"seed": seed, "train": tc.model_dump(mode="json")})
    kc = tc.adaptation.knowledge_transfer
    num_parts = num_parts_of(data_dir)
    stage1_augment = build_augmenter(tc.augment, seed, 0, Stream.KT_STAGE1_AUGMENT)
    stage2_augment = build_augmenter(tc.augment, seed, 0)
    appearance = build_appearance(tc.appearance, seed, paths.data)
    train_ds, val_ds = train_val_datasets(data_dir, tc, stage2_augment, appearance, maps=True)
    joint_names = train_ds.joint_names
    device = tr.resolve_device(tc.device)
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    ckpt_path, log_path = out_dir / tr.CHECKPOINT_NAME, out_dir / tr.LOG_NAME
    stage1_path, step_log_path = out_dir / STAGE1_LOG_NAME, out_dir / tr.STEP_LOG_NAME
    resuming = resume and ckpt_path.exists()

    tr.seed_everything(seed)
    kt = KnowledgeTransfer(tc, len(joint_names), num_parts, device, seed, pretrained=not resuming)
    pretrained_from = kt.pretrained_from
    real_train = unlabelled_photos(tc, paths, build_augmenter(tc.augment, seed, 1))
    _, real_eval = tr.real_datasets(tc, paths.data, False) if tc.real.log_pck else (None, None)

    bs, workers = tc.batch_size, tc.workers
    real_bs = tc.real.batch_size or bs
    drop_last = len(train_ds) % bs == 1 and len(train_ds) > 1
    spe = len(train_ds) // bs if drop_last else math.ceil(len(train_ds) / bs)
    s1_epochs = kc.stage1_epochs
    s1_steps = s1_epochs * spe
    s2_steps = tr.total_steps_of(tc, spe)          # train.steps, else train.epochs x spe
    s2_epochs = math.ceil(s2_steps / spe) if tc.steps else tc.epochs
    s1_schedule = tc.model_copy(update={"epochs": s1_epochs, "steps": None})
    skeleton_scale = train_ds.mean_scale()

    s1_done, s2_done, step = 0, 0, 0
    rows1, rows2, step_rows = [], [], []
    out_dir.mkdir(parents=True, exist_ok=True)
    if resuming:
        ckpt = tr.load_checkpoint(ckpt_path)
        tr._check_resume(ckpt, tc, seed, ckpt_path, joint_names, data_dir)
        old = load_config(None, [], base=ckpt["config"]).train
        for key, a, b in (("train.model", old.model, tc.model),
                          (f"{KEY}.segmenter_width", old.adaptation.knowledge_transfer.segmenter_width,
                           kc.segmenter_width)):
            if a != b:
                raise ConfigError(f"{ckpt_path}: config key '{key}' = {b!r} differs from the checkpoint's {a!r}; "
                                  "use a new output folder or no resume")
        if "stage1_epoch" not in ckpt:
            raise InputError(f"{ckpt_path}: not a knowledge_transfer checkpoint")
        s1_done, s2_done, step = int(ckpt["stage1_epoch"]), int(ckpt["epoch"]), int(ckpt["step"])
        if s1_done > s1_epochs or (s2_done > 0 and s1_done != s1_epochs):
            raise ConfigError(f"{ckpt_path}: config key '{KEY}.stage1_epochs' = {s1_epochs} differs from the "
                              f"{s1_done} stage-1 epochs of the checkpoint; use a new output folder or no resume")
        kt.load_state(ckpt)
        tr._set_rng_state(ckpt["rng"])
        pretrained_from = ckpt.get("pretrained_from")
        rows1 = tr._read_log(stage1_path, s1_done)
        rows2 = tr._read_log(log_path, s2_done)
        step_rows = tr._read_log(step_log_path, step, "step")
    atomic_write_text(out_dir / tr.CONFIG_NAME, config_yaml(record) if record is not None
                      else yaml.safe_dump(stored, sort_keys=False))

    every, log_every = tc.checkpoint_every, tc.log_every_steps
    fields1 = (["epoch", "train_loss"] + [f"train_{n}" for n in STAGE1_LOSSES[1:]]
               + ["val_depth_mpjpe_mm", "val_mask_mpjpe_mm", "val_chain_mpjpe_mm", "val_seg_fg_iou",
                  "val_seg_miou", "val_seg_part_miou", "lr", "epoch_seconds", "train_samples_per_s"])
    fields2 = (["epoch", "train_loss"] + [f"train_{n}" for n in STAGE2_LOSSES[1:]]
               + tr.VAL_FIELDS + ["lr", "epoch_seconds", "train_samples_per_s"])
    step_fields = ["step", "stage", "epoch", "lr"] + list(dict.fromkeys(STAGE1_LOSSES + STAGE2_LOSSES))
    tb = tr._Tensorboard(tc.tensorboard, out_dir / tr.TENSORBOARD_DIR)

    def save() -> None:
        buf = io.BytesIO()
        torch.save({"schema": tr.CHECKPOINT_SCHEMA, "epoch": s2_done, "stage1_epoch": s1_done, "step": step,
                    "model": kt.model.state_dict(), "optimizer": kt.optimizers["main"].state_dict(),
                    **kt.state(), "spa": None, "rng": tr._rng_state(), "config": stored,
                    "joint_names": joint_names, "num_parts": num_parts, "skeleton_scale_m": skeleton_scale,
                    "pretrained_from": pretrained_from}, buf)
        atomic_write_bytes(ckpt_path, buf.getvalue())

    print(f"train: knowledge_transfer, {tc.backbone}/integral width {tc.width} "
          f"({count_parameters(kt.model) / 1e6:.2f} M params per pose network, G "
          f"{count_parameters(kt.segmenter) / 1e6:.2f} M) on {device}; {len(train_ds)} train / "
          f"{len(val_ds) if val_ds else 0} val samples, {len(real_train)} unlabelled photos"
          f"{' (+ 2D labels)' if kc.real_2d else ''}{' + synthetic RGB' if kc.synthetic_rgb else ''}; "
          f"stage 1 {f'epochs {s1_done + 1}..{s1_epochs}' if s1_done < s1_epochs else 'done'} ({s1_steps} steps), "
          f"stage 2 {f'epochs {s2_done + 1}..{s2_epochs}' if s2_done < s2_epochs else 'done'} ({s2_steps} steps); "
          f"{'pretrained ' + pretrained_from if pretrained_from else 'random init'}", file=sys.stderr)
    teacher_val, val_metrics, real_pck, train_loss = None, None, None, float("nan")
    start = {"stage1_epoch": s1_done, "epoch": s2_done}
    for g in range(s1_done + s2_done, s1_epochs + s2_epochs):
        if stop_after_epochs is not None and g >= stop_after_epochs:
            break
        stage = 1 if g < s1_epochs else 2
        epoch = g if stage == 1 else g - s1_epochs            # 0-based, within the stage
        kt.set_stage(stage)
        t0 = time.perf_counter()
        # Stage 1 on streams of its own; stage 2 draws what a plain run draws in its epoch.
        order_stream = Stream.KT_STAGE1_ORDER if stage == 1 else Stream.TRAIN_ORDER
        order = torch.Generator().manual_seed(torch_seed(seed, order_stream, epoch))
        train_ds.set_epoch(epoch)
        train_ds.maps = stage == 1
        train_ds.augment = stage1_augment if stage == 1 else stage2_augment
        train_ds.appearance = None if stage == 1 else appearance
        use_syn = stage == 1 or kc.synthetic_rgb
        batches = (tr._loader(train_ds, bs, workers, device, RandomSampler(train_ds, generator=order), drop_last)
                   if use_syn else range(spe))
        reals = None
        if stage == 2:
            real_train.set_epoch(epoch)
            reals = tr._real_batches(real_train, real_bs, workers, device, seed, epoch)
        sums: dict[str, float] = {}
        seen: dict[str, int] = {}
        count = 0
        n_epochs = s1_epochs if stage == 1 else s2_epochs
        bar = tqdm(batches, desc=f"stage {stage} epoch {epoch + 1}/{n_epochs}", leave=False, disable=None)
        for batch in bar:
            if stage == 1:
                kt.set_lr(tr.lr_factor(s1_schedule, step, spe))
                syn = tr._to_device(batch, device)
                losses = kt.stage1_step(syn, step)
                count += len(syn["image"])
            else:
                kt.set_lr(tr.lr_factor(tc, step - s1_steps, spe))
                syn = tr._to_device(batch, device) if use_syn else None
                real = tr._to_device(next(reals), device)
                losses = kt.stage2_step(real, syn)
                count += len(real["image"]) + (len(syn["image"]) if syn is not None else 0)
            if not math.isfinite(losses["loss"]):
                raise FloatingPointError(f"knowledge_transfer diverged in stage {stage}, epoch {epoch + 1}, "
                                         f"step {step + 1} (loss {losses['loss']}); lower train.lr")
            step += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v)
                seen[k] = seen.get(k, 0) + 1
            if step % log_every == 0:
                lr_now = kt.optimizers["teachers" if stage == 1 else "main"].param_groups[0]["lr"]
                step_rows.append({"step": step, "stage": stage, "epoch": epoch + 1, "lr": f"{lr_now:.6g}",
                                  **{k: _fmt(v) for k, v in losses.items()}})
                tb.scalars(f"stage{stage}_step", {**losses, "lr": lr_now}, step)
            bar.set_postfix(loss=f"{sums['loss'] / seen['loss']:.4f}")
            if stage == 2 and step - s1_steps >= s2_steps:     # train.steps may end the last epoch early
                break
        means = {k: v / seen[k] for k, v in sums.items()}
        train_loss = means.get("loss", float("nan"))
        seconds = time.perf_counter() - t0
        lr_now = kt.optimizers["teachers" if stage == 1 else "main"].param_groups[0]["lr"]
        common = {"epoch": epoch + 1, "train_loss": f"{train_loss:.6f}",
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
            val_metrics = None
            if val_ds is not None:
                val_ds.maps = False
                val_metrics = pose_metrics(*tr.predict(kt.model, val_ds, device, bs, workers, "val"), joint_names)
                val_ds.maps = True
            real_pck = tr._real_pck(kt.model, real_eval, device, bs, workers) if real_eval is not None else None
            row = {**common, **tr.val_columns(val_metrics, real_pck)}
            # the transfer target is a function of the RGB network's own prediction, so one pose
            # for every photo is a fixed point of the stage-2 loss (measured: it is reached)
            tr.warn_if_collapsed(val_metrics, f"stage 2 epoch {epoch + 1}",
                                 "stage 2 on unlabelled photos alone can settle there: add the renders' RGB "
                                 "(train.adaptation.knowledge_transfer.synthetic_rgb) or real 2D labels (real_2d)")
            rows2.append(row)
            tr._write_log(log_path, fields2, rows2)
            txt = ((f", val MPJPE {val_metrics['mpjpe_mm']:.1f} mm" if val_metrics else "")
                   + (f", LSP PCK@0.2 {100 * real_pck:.1f} %" if real_pck is not None else ""))
        tr._write_log(step_log_path, step_fields, step_rows)
        tb.scalars(f"stage{stage}_epoch", {k: float(v) for k, v in row.items() if k != "epoch" and v != ""}, g + 1)
        if (g + 1) % every == 0 or g + 1 in (s1_epochs, s1_epochs + s2_epochs) or g + 1 == stop_after_epochs:
            save()
        print(f"stage {stage} epoch {epoch + 1}/{n_epochs}: train loss {train_loss:.4f}{txt} ({seconds:.1f} s)",
              file=sys.stderr)
    if not ckpt_path.exists():
        save()
    tb.close()
    return {"method": METHOD, "stage1_epochs_completed": s1_done, "epochs_completed": s2_done,
            "stage1_steps": min(step, s1_steps), "stage2_steps": max(step - s1_steps, 0),
            "resumed_from": start, "train_loss": train_loss, "val": val_metrics,
            "teachers_val": teacher_val, "real_pck02": real_pck, "device": str(device),
            "train_samples": len(train_ds), "val_samples": len(val_ds) if val_ds else 0,
            "real_train_samples": len(real_train), "checkpoint": str(ckpt_path), "log": str(log_path)}


def load_knowledge_transfer(checkpoint: Path, device: str = "cpu") -> tuple[KnowledgeTransfer, dict]:
    """The networks of a knowledge_transfer checkpoint (to evaluate the stage-1 networks), frozen
    as in stage 2."""
    ckpt = tr.load_checkpoint(checkpoint)
    cfg = load_config(None, [], base=ckpt["config"])
    if cfg.train.adaptation.method != METHOD or "num_parts" not in ckpt:
        raise InputError(f"{checkpoint}: not a knowledge_transfer checkpoint")
    kt = KnowledgeTransfer(cfg.train, len(ckpt["joint_names"]), int(ckpt["num_parts"]),
                           tr.resolve_device(device), cfg.seed, pretrained=False)
    kt.load_state(ckpt)
    kt.set_stage(2)
    return kt, ckpt


tr.OWN_LOOPS[METHOD] = train_knowledge_transfer
