"""Knowledge transfer (synth.train.knowledge_transfer and its trainer) on tiny real data: the
session's rendered dataset (its RGB, depth and part maps) and a few LSP photos, through tiny real
networks. Each test checks that a loss moves what it should and leaves alone what it should not."""
import copy
import csv
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from synth.config import Config, ConfigError, load_config
from synth.io_utils import InputError
from synth.scene import JOINTS
from synth.train import knowledge_transfer as ktm
from synth.train.augment import build_augmenter
from synth.train.data import train_val_datasets
from synth.train.evaluate import evaluate
from synth.train.knowledge_transfer_trainer import (KnowledgeTransfer, evaluate_teachers, load_knowledge_transfer,
                                                    num_parts_of, train_knowledge_transfer)
from synth.train.models import build_model, crop_pixels_from_normalised
from synth.train.pretrained import load_pretrained_backbone
from synth.train.real_data import LspDataset, PhotoFolderDataset
from synth.train.trainer import load_checkpoint, seed_everything, train_from_config

SIZE = 64
TINY = ["train.backbone=resnet18", "train.width=8", f"train.input_size={SIZE}", "train.batch_size=4",
        "train.workers=0", "train.device=cpu", "train.lr=0.001", "train.augment.enabled=false",
        "train.real.log_pck=false", "train.tensorboard=false", "train.head=integral",
        "train.model.deconv_channels=32", "train.model.depth_bins=16",
        "train.adaptation.method=knowledge_transfer", "train.adaptation.knowledge_transfer.segmenter_width=16"]
STAGE1_STEPS, WARMUP = 100, 20


def tiny_cfg(*more: str) -> Config:
    return load_config(None, TINY + list(more))


def new_kt(cfg: Config, num_parts: int = 15) -> KnowledgeTransfer:
    """The networks of a fresh run of `cfg` (random initial weights: TINY has no pretrained ones)."""
    seed_everything(cfg.seed)
    return KnowledgeTransfer(cfg.train, len(JOINTS), num_parts, torch.device("cpu"), cfg.seed)


def state_copy(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_state(module: torch.nn.Module, before: dict, what: str) -> None:
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k]), f"{what}: {k} changed"


@pytest.fixture(scope="module")
def batches(rendered_dataset, shared_data):
    """(synthetic batch with maps (the training shard's 3 renders), 4 unlabelled LSP photos,
    the same 4 photos with their 2D labels), at 64 px."""
    cfg = tiny_cfg()
    syn_ds, _ = train_val_datasets(rendered_dataset, cfg.train, maps=True)
    syn = next(iter(DataLoader(syn_ds, batch_size=4)))
    photos = PhotoFolderDataset(shared_data / "lsp", SIZE, indices=list(range(4)))
    labelled = LspDataset(shared_data / "lsp", SIZE, indices=list(range(4)))
    return syn, next(iter(DataLoader(photos, batch_size=4))), next(iter(DataLoader(labelled, batch_size=4)))


def label_iou(kt: KnowledgeTransfer, syn: dict) -> dict:
    """G's mask IoUs (eval mode) from the labelled 2D joints and depths of the batch."""
    kt.segmenter.eval()
    with torch.no_grad():
        uvz = ktm.label_uvz(syn["joints_2d_crop"], syn["target"], SIZE, kt.depth_net.head.half_extent)
        counts = ktm.mask_iou(kt.segmenter(uvz), syn["parts"], kt.num_parts)
    kt.set_stage(kt.stage)
    return ktm.iou_summary(counts)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These networks are tiny: one thread does their work as fast as two, and does not spin
    against other processes on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stage1(batches, rendered_dataset):
    """STAGE1_STEPS stage-1 steps on the 3 renders (warm-up WARMUP steps), with what the tests
    look at recorded along the way; returns (the KnowledgeTransfer, the record). At lr 0.003 G's
    person emerges from the background within 75-100 steps (measured over three seeds; at the
    default 0.001 it takes 100-150)."""
    syn, _, _ = batches
    cfg = tiny_cfg(f"train.adaptation.knowledge_transfer.adv_warmup_steps={WARMUP}", "train.lr=0.003")
    kt = new_kt(cfg, num_parts_of(rendered_dataset))
    kt.set_stage(1)
    record = {"iou_before": label_iou(kt, syn), "losses": []}
    for step in range(STAGE1_STEPS):
        if step == WARMUP:
            record["classifier_at_warmup"] = state_copy(kt.modality_classifier)
        record["losses"].append(kt.stage1_step(syn, step))
    record["iou_after"] = label_iou(kt, syn)
    record["classifier_after"] = state_copy(kt.modality_classifier)
    return kt, record


# --- inputs and losses -----------------------------------------------------------------------

def test_depth_and_part_maps_follow_the_crop(rendered_dataset):
    cfg = tiny_cfg()
    plain, _ = train_val_datasets(rendered_dataset, cfg.train)
    assert "depth_m" not in plain[0] and "parts" not in plain[0]          # off unless asked for
    aug = build_augmenter(load_config(None, []).train.augment, seed=3)    # rotation, zoom, occluders
    for augment in (None, aug):
        ds, _ = train_val_datasets(rendered_dataset, cfg.train, augment, maps=True)
        for i in range(len(ds)):
            item = ds[i]
            depth, parts = item["depth_m"], item["parts"]
            assert depth.shape == parts.shape == (SIZE, SIZE)
            assert torch.equal(depth > 0, parts > 0)                       # one silhouette
            assert int(parts.max()) < num_parts_of(rendered_dataset) and (parts > 0).float().mean() > 0.05
            assert 0.5 < float(depth[depth > 0].median()) < 50.0           # metres in front of the camera
            # The joints lie inside the body, so those on the crop fall on its silhouette.
            j = item["joints_2d_crop"].round().long()
            on = ((j >= 0) & (j < SIZE)).all(1)
            hits = parts[j[on, 1], j[on, 0]] > 0
            assert on.sum() >= 10 and hits.float().mean() >= 0.9, (i, hits)
    x = ktm.depth_input(item["depth_m"][None])
    person = item["depth_m"][None, None] > 0
    assert x.shape == (1, 1, SIZE, SIZE) and (x[~person] == ktm.DEPTH_BACKGROUND).all()
    assert x[person].abs().max() <= ktm.DEPTH_CLIP and abs(float(x[person].median())) < 1e-6
    onehot = ktm.mask_input(item["parts"][None], 15)
    assert onehot.shape == (1, 15, SIZE, SIZE) and torch.equal(onehot.sum(1), torch.ones(1, SIZE, SIZE))
    assert torch.equal(onehot.argmax(1)[0], item["parts"])


def test_scale_invariant_error_equals_its_closed_form_and_ignores_a_global_scale(batches):
    syn, _, _ = batches
    parts = syn["parts"]
    log_target = ktm.smoothed_log_mask(parts, 15)
    gen = torch.Generator().manual_seed(0)
    log_pred = log_target + 0.8 * torch.randn(log_target.shape, generator=gen)
    loss = float(ktm.scale_invariant_error(log_pred, log_target))
    d = (log_pred.double() - log_target.double()).flatten(1).numpy()
    n = d.shape[1]
    closed = np.mean((d ** 2).sum(1) / n - d.sum(1) ** 2 / n ** 2)
    assert loss == pytest.approx(closed, rel=1e-5) and loss > 0.5
    # A global scale α of either mask adds log α to every d_i: the error does not change.
    for alpha in (1e-3, 0.37, 25.0):
        assert float(ktm.scale_invariant_error(log_pred + math.log(alpha), log_target)) == pytest.approx(loss, rel=1e-4)
        assert float(ktm.scale_invariant_error(log_pred, log_target + math.log(alpha))) == pytest.approx(loss, rel=1e-4)
    # Zero for the true mask at any scale; and the mask network reads the same soft mask.
    assert float(ktm.scale_invariant_error(log_target + math.log(4.0), log_target)) < 1e-10
    torch.testing.assert_close(ktm.soft_mask(log_pred + math.log(25.0)), ktm.soft_mask(log_pred))
    torch.testing.assert_close(ktm.soft_mask(log_target), torch.exp(log_target))   # the smoothed one-hot
    # A per-sample scale is free too (the error is per sample), a per-pixel change is not.
    shifted = log_pred + torch.tensor([0.5, -2.0, 3.0])[:len(parts), None, None, None]
    assert float(ktm.scale_invariant_error(shifted, log_target)) == pytest.approx(loss, rel=1e-4)
    assert float(ktm.scale_invariant_error(log_pred * 1.5, log_target)) != pytest.approx(loss, rel=1e-2)


def test_inflated_first_convolution_sees_the_grey_image_of_its_input(batches):
    syn, _, _ = batches
    torch.manual_seed(0)
    rgb = build_model(tiny_cfg().train).eval()
    first = rgb.backbone.stem[0]
    greys = ktm.mask_grey_levels(15)
    assert len(set(greys)) == 15 and greys[0] == ktm.MASK_BACKGROUND_GREY        # one level per channel
    depth = ktm.depth_input(syn["depth_m"])
    onehot = ktm.mask_input(syn["parts"], 15)
    soft = ktm.soft_mask(torch.randn(onehot.shape, generator=torch.Generator().manual_seed(1)))
    lut = torch.tensor(greys)
    cases = [(ktm.DEPTH_GREY, depth, depth),                                   # the depth offsets themselves
             (greys, onehot, lut[syn["parts"]][:, None]),                       # each part its own grey
             (greys, soft, (soft * lut[None, :, None, None]).sum(1, keepdim=True))]   # G's soft masks too
    for levels, x, grey_image in cases:
        net = copy.deepcopy(rgb)
        conv = ktm.adapt_input_channels(net.backbone, levels)
        assert conv is net.backbone.stem[0] and conv.in_channels == len(levels) == x.shape[1]
        with torch.no_grad():
            torch.testing.assert_close(conv(x), first(grey_image.expand(-1, 3, -1, -1)), atol=1e-5, rtol=1e-5)
            pose, uvz = ktm.predict_uvz(net.eval(), x)
        assert pose.shape == uvz.shape == (len(x), 15, 3) and uvz.abs().max() <= 1.0
    # Equal gains would have shown every one-hot mask as one flat image: no part visible at the start.
    flat = copy.deepcopy(rgb)
    ktm.adapt_input_channels(flat.backbone, [1.0 / 15] * 15)
    with torch.no_grad():
        out = flat.backbone.stem[0](onehot)
    assert float(out[..., 8:-8, 8:-8].std(dim=(2, 3)).max()) < 1e-5


def test_networks_start_from_imagenet_weights_and_the_rgb_network_as_train_starts():
    cfg = tiny_cfg("train.backbone=efficientnet_lite0", "train.pretrained=imagenet")
    kt = new_kt(cfg)
    seed_everything(cfg.seed)
    plain = build_model(cfg.train)                 # what `train` builds for the same configuration
    assert load_pretrained_backbone(plain, cfg.train) == kt.pretrained_from is not None
    for k, v in plain.state_dict().items():
        assert torch.equal(v, kt.rgb.state_dict()[k]), k
    rgb = kt.rgb.backbone.state_dict()
    for net, levels in ((kt.depth_net, ktm.DEPTH_GREY), (kt.mask_net, ktm.mask_grey_levels(15))):
        own = net.backbone.state_dict()
        assert set(own) == set(rgb)
        for k, v in own.items():                  # the ImageNet weights, the first convolution inflated
            expect = rgb[k] if k != "_conv_stem.weight" else \
                rgb[k].sum(1, keepdim=True) * torch.tensor(levels)[None, :, None, None]
            torch.testing.assert_close(v, expect, msg=k)
        # its own initial head, not the RGB network's
        assert not torch.equal(net.head.heatmaps_2d.weight, kt.rgb.head.heatmaps_2d.weight)
    # EfficientNet-Lite0 rescales its RGB input per channel; the inflated networks' first layer
    # answers a depth map nearly as the RGB network answers its grey image.
    x = ktm.depth_input(torch.rand(2, SIZE, SIZE) * 0.6 + 2.0)
    with torch.no_grad():
        b_rgb, b_depth = kt.rgb.backbone.eval(), kt.depth_net.backbone.eval()
        a = b_rgb._bn0(b_rgb._conv_stem(x.expand(-1, 3, -1, -1) * b_rgb.input_scale + b_rgb.input_shift))
        b = b_depth._bn0(b_depth._conv_stem(x * b_depth.input_scale + b_depth.input_shift))
        pose, _ = ktm.predict_uvz(kt.depth_net.eval(), x)
        pose_m = kt.mask_net.eval()(ktm.mask_input(torch.zeros(2, SIZE, SIZE, dtype=torch.long), 15))
    assert torch.isfinite(pose).all() and torch.isfinite(pose_m).all()
    rel = float((a - b).abs().mean() / a.abs().mean())
    print(f"EfficientNet-Lite0 stem: depth network vs RGB network on the grey image, mean relative "
          f"difference {rel:.4f}")
    assert rel < 0.1


# --- stage 1 -----------------------------------------------------------------------------

def _mean(losses: list[dict], key: str, part: slice) -> float:
    return float(np.mean([r[key] for r in losses[part]]))


def test_depth_and_mask_networks_learn(stage1):
    _, rec = stage1
    for key in ("depth_3d", "mask_3d", "loss"):
        first, last = _mean(rec["losses"], key, slice(0, 5)), _mean(rec["losses"], key, slice(-5, None))
        print(f"stage 1 {key}: {first:.4f} -> {last:.4f}")
        assert last < 0.7 * first, key


def test_segmenter_mask_moves_toward_the_true_mask(stage1):
    _, rec = stage1
    before, after = rec["iou_before"], rec["iou_after"]
    recon = _mean(rec["losses"], "recon", slice(0, 5)), _mean(rec["losses"], "recon", slice(-5, None))
    print(f"G: scale-invariant error {recon[0]:.3f} -> {recon[1]:.3f}; mIoU {before['miou']:.3f} -> "
          f"{after['miou']:.3f}, person IoU {before['fg_iou']:.3f} -> {after['fg_iou']:.3f}, part mIoU "
          f"{before['part_miou']:.4f} -> {after['part_miou']:.4f}")
    assert recon[1] < 0.5 * recon[0]
    # G first learns the background, then the person appears out of it: all three rise.
    assert after["miou"] > before["miou"] + 0.03
    assert after["fg_iou"] > 1.5 * before["fg_iou"] and after["part_miou"] > before["part_miou"]


def test_adversarial_term_waits_for_the_warmup(stage1):
    kt, rec = stage1
    assert all("adv" not in r for r in rec["losses"][:WARMUP])
    assert all(math.isfinite(r["adv"]) for r in rec["losses"][WARMUP:])
    # Untouched during the warm-up (still its initial weights), trained after it.
    fresh = new_kt(tiny_cfg()).modality_classifier                   # its own stream: the same start
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, rec["classifier_at_warmup"][k]), k
    assert any(not torch.equal(v, rec["classifier_at_warmup"][k]) for k, v in rec["classifier_after"].items())


# --- stage 2 -----------------------------------------------------------------------------

def test_stage2_moves_only_the_rgb_network_toward_the_mask_networks_pose(stage1, batches):
    kt = copy.deepcopy(stage1[0])
    _, photos, _ = batches
    kt.set_stage(2)
    frozen = {"segmenter": kt.segmenter, "mask_net": kt.mask_net, "depth_net": kt.depth_net}
    before = {k: state_copy(m) for k, m in frozen.items()}
    for name, m in frozen.items():
        assert not any(p.requires_grad for p in m.parameters()), name
        assert not any(mod.training for mod in m.modules()), name       # BatchNorm statistics fixed
    rgb_before = state_copy(kt.rgb)

    def distance_to_target(batch_statistics: bool) -> float:
        """Mean joint distance of the RGB 3D to P̂ on the photos, with BatchNorm as the training
        step sees it (batch statistics, on a copy so the running ones stay) or as at inference."""
        net = copy.deepcopy(kt.rgb).train(batch_statistics)
        with torch.no_grad():
            pose, uvz = ktm.predict_uvz(net, photos["image"])
            target, _ = kt.transfer_target(uvz)
        return float((pose - target).norm(dim=-1).mean())

    start = [distance_to_target(b) for b in (True, False)]
    for _ in range(20):
        out = kt.stage2_step(photos, None)
        assert "syn_pose" not in out and "real_2d" not in out
    end = [distance_to_target(b) for b in (True, False)]
    print(f"stage 2: mean distance of the RGB 3D to P̂ (normalised units) {start[0]:.4f} -> {end[0]:.4f} "
          f"(batch statistics), {start[1]:.4f} -> {end[1]:.4f} (running statistics)")
    assert end[0] < 0.75 * start[0] and end[1] < start[1]
    for name, m in frozen.items():
        assert_same_state(m, before[name], name)
    assert any(not torch.equal(v, rgb_before[k]) for k, v in kt.rgb.state_dict().items())


def test_stage2_options_use_synthetic_labels_and_real_2d_labels(stage1, batches):
    syn, _, labelled = batches
    kt = copy.deepcopy(stage1[0])
    kt.kt = kt.kt.model_copy(update={"real_2d": True})
    kt.set_stage(2)
    seg = state_copy(kt.segmenter)
    vis = labelled["visible_2d"]

    def real_2d_error(batch_statistics: bool) -> float:
        """Mean 2D error (crop pixels) of the RGB network on the labelled visible joints (BatchNorm
        as in distance_to_target above)."""
        net = copy.deepcopy(kt.rgb).train(batch_statistics)
        with torch.no_grad():
            _, uvz = ktm.predict_uvz(net, labelled["image"])
        err = (crop_pixels_from_normalised(uvz[..., :2], SIZE) - labelled["joints_2d_crop"]).norm(dim=-1)
        return float((err * vis).sum() / vis.sum())

    start = [real_2d_error(b) for b in (True, False)]
    losses = [kt.stage2_step(labelled, syn) for _ in range(40)]
    end = [real_2d_error(b) for b in (True, False)]
    print(f"stage 2 + synthetic RGB + real 2D: real 2D error {start[0]:.2f} -> {end[0]:.2f} px (batch statistics), "
          f"{start[1]:.2f} -> {end[1]:.2f} px (running); syn pose {losses[0]['syn_pose']:.4f} -> "
          f"{losses[-1]['syn_pose']:.4f}")
    assert end[0] < 0.75 * start[0] and end[1] < start[1]
    assert losses[-1]["syn_pose"] < 0.8 * losses[0]["syn_pose"]
    assert_same_state(kt.segmenter, seg, "segmenter")


# --- training runs -----------------------------------------------------------------------

RUN = ["train.batch_size=4", "train.val_fraction=0.5", "train.log_every_steps=1",
       "train.real.train_range=[0,8]", "train.real.eval_range=[8,12]", "train.real.log_pck=true",
       "train.adaptation.knowledge_transfer.stage1_epochs=2", "train.epochs=2",
       "train.adaptation.knowledge_transfer.adv_warmup_steps=1",
       "train.adaptation.knowledge_transfer.synthetic_rgb=true"]


def kt_run(cfg: Config, data, out, **kw) -> dict:
    """train_knowledge_transfer with the sections of a whole configuration (as train_from_config)."""
    return train_knowledge_transfer(cfg.train, data, out, seed=cfg.seed, paths=cfg.paths(), record=cfg, **kw)


def test_resume_inside_and_between_stages_gives_the_same_weights(rendered_dataset, shared_data, tmp_path):
    cfg = tiny_cfg(f"data_dir={shared_data}", *RUN)
    straight = train_from_config(cfg, rendered_dataset, tmp_path / "a", resume=False)   # through train's dispatch
    assert straight["method"] == "knowledge_transfer"
    # Stopped inside stage 1 (after epoch 1), between the stages (2) and inside stage 2 (3).
    for stop in (1, 2, 3):
        part = kt_run(cfg, rendered_dataset, tmp_path / "b", resume=stop > 1, stop_after_epochs=stop)
        assert part["stage1_epochs_completed"] == min(stop, 2) and part["epochs_completed"] == max(stop - 2, 0)
    resumed = kt_run(cfg, rendered_dataset, tmp_path / "b")
    assert resumed["resumed_from"] == {"stage1_epoch": 2, "epoch": 1}
    a, b = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert (a["stage1_epoch"], a["epoch"], a["step"]) == (b["stage1_epoch"], b["epoch"], b["step"]) == (2, 2, 4)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert set(a["modules"]) == {"depth_net", "mask_net", "segmenter", "modality_classifier", "rgb_domain_classifier"}
    for module in a["modules"]:
        for name, tensor in a["modules"][module].items():
            assert torch.equal(tensor, b["modules"][module][name]), (module, name)
    for log in ("stage1.csv", "log.csv", "steps.csv"):
        ra, rb = (list(csv.DictReader(open(run / log))) for run in (tmp_path / "a", tmp_path / "b"))
        timing = ("epoch_seconds", "train_samples_per_s")
        strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
        assert strip(ra) == strip(rb), log
    steps = list(csv.DictReader(open(tmp_path / "a" / "steps.csv")))
    assert [s["stage"] for s in steps] == ["1", "1", "2", "2"] and steps[0]["adv"] == "" and steps[1]["adv"] != ""
    assert float(steps[-1]["syn_pose"]) > 0
    # The checkpoint's model is the RGB network: `synth eval` reproduces the run's own numbers.
    ev = evaluate(tmp_path / "a" / "checkpoint.pt", rendered_dataset, device="cpu", print_table=False)
    assert ev["mpjpe_mm"] == pytest.approx(straight["val"]["mpjpe_mm"], rel=1e-6)
    assert a["skeleton_scale_m"] > 0                                   # what `synth predict` needs
    kt, _ = load_knowledge_transfer(tmp_path / "a" / "checkpoint.pt")
    val_ds = train_val_datasets(rendered_dataset, cfg.train, maps=True)[1]
    teachers = evaluate_teachers(kt, val_ds, 4)
    row = list(csv.DictReader(open(tmp_path / "a" / "stage1.csv")))[-1]
    assert float(row["val_depth_mpjpe_mm"]) == pytest.approx(teachers["depth"]["mpjpe_mm"], abs=0.01)
    assert float(row["val_mask_mpjpe_mm"]) == pytest.approx(teachers["mask"]["mpjpe_mm"], abs=0.01)
    # A resumed run must keep what the checkpoint's stage 2 was built on.
    with pytest.raises(ConfigError, match="stage1_epochs"):
        kt_run(tiny_cfg(f"data_dir={shared_data}", *RUN, "train.adaptation.knowledge_transfer.stage1_epochs=3"),
               rendered_dataset, tmp_path / "b")


def test_stage2_budget_follows_train_steps(rendered_dataset, shared_data, tmp_path):
    # One training shard of 3 renders at batch 4: one step per epoch, so 3 steps are 3 epochs; the
    # stage-2 budget is train.steps whatever train.epochs says, as in every other run.
    cfg = tiny_cfg(f"data_dir={shared_data}", *RUN, "train.adaptation.knowledge_transfer.stage1_epochs=1",
                   "train.steps=3", "train.epochs=1", "train.real.log_pck=false")
    summary = kt_run(cfg, rendered_dataset, tmp_path / "run", resume=False)
    assert (summary["stage1_steps"], summary["stage2_steps"], summary["epochs_completed"]) == (1, 3, 3)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert (ckpt["stage1_epoch"], ckpt["epoch"], ckpt["step"]) == (1, 3, 4)
    steps = list(csv.DictReader(open(tmp_path / "run" / "steps.csv")))
    assert [s["stage"] for s in steps] == ["1", "2", "2", "2"]
    # the cosine schedule of stage 2 runs over its 3 steps (factor 1 at its first step)
    assert float(steps[1]["lr"]) == pytest.approx(cfg.train.lr) and float(steps[3]["lr"]) < float(steps[2]["lr"])


def test_bad_settings_are_one_line_errors(rendered_dataset, shared_data, tmp_path):
    with pytest.raises(ConfigError, match="train.head.*integral"):
        tiny_cfg("train.head=regression")
    with pytest.raises(ConfigError, match="train.adaptation.jo2d"):
        tiny_cfg("train.adaptation.jo2d=true")
    with pytest.raises(ConfigError, match="knowledge_transfer.real_photos"):
        tiny_cfg("train.adaptation.knowledge_transfer.real_photos=5")
    with pytest.raises(ConfigError, match="knowledge_transfer.real_photos"):
        tiny_cfg("train.adaptation.knowledge_transfer.real_photos=' '")
    with pytest.raises(ConfigError, match="knowledge_transfer.segmenter_width"):
        tiny_cfg("train.adaptation.knowledge_transfer.segmenter_width=0")
    with pytest.raises(ConfigError, match="knowledge_transfer.depth_weight"):
        tiny_cfg("train.adaptation.knowledge_transfer.depth_weight=-1")
    with pytest.raises(InputError, match="nowhere"):
        kt_run(tiny_cfg(f"train.adaptation.knowledge_transfer.real_photos={tmp_path / 'nowhere'}"),
               rendered_dataset, tmp_path / "r")
    with pytest.raises(ConfigError, match="image 801 .*eval_range"):      # LSP 801-1000 are only evaluated on
        kt_run(tiny_cfg(f"data_dir={shared_data}",
                        f"train.adaptation.knowledge_transfer.real_photos={shared_data / 'lsp'}"),
               rendered_dataset, tmp_path / "r")
    with pytest.raises(InputError, match="1-1000"):
        kt_run(tiny_cfg(f"train.adaptation.knowledge_transfer.real_photos={shared_data / 'lsp'}:990-1001"),
               rendered_dataset, tmp_path / "r")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
