"""Domain adaptation and SPA wiring on tiny real data: the session's rendered dataset (conftest
`rendered_dataset`) and a few LSP photos of the data mirror, through tiny real networks.
Each test checks that a loss moves what it should and leaves alone what it should not."""
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from synth.cli import main as cli_main
from synth.config import load_config
from synth.scene import JOINTS
from synth.train import adaptation as da
from synth.train.data import train_val_datasets
from synth.train.metrics import align_2d
from synth.train.models import build_model
from synth.train.real_data import LspDataset
from synth.train.trainer import _Stepper, fit_spa, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SIZE = 64
TINY = ["train.backbone=resnet18", "train.width=8", f"train.input_size={SIZE}", "train.batch_size=4",
        "train.workers=0", "train.device=cpu", "train.lr=0.001", "train.augment.enabled=false",
        "train.real.log_pck=false", "train.tensorboard=false"]


def tiny_cfg(*more: str):
    return load_config(None, TINY + list(more))


@pytest.fixture(scope="module")
def batches(rendered_dataset, shared_data):
    """(synthetic batch (the 3 samples of the training shard), real batch (4 LSP photos)) at 64 px."""
    cfg = tiny_cfg()
    syn_ds, _ = train_val_datasets(rendered_dataset, cfg.train)
    real_ds = LspDataset(shared_data / "lsp", SIZE, indices=list(range(4)))
    syn = next(iter(DataLoader(syn_ds, batch_size=4)))
    real = next(iter(DataLoader(real_ds, batch_size=4)))
    return syn, real


def make_stepper(*more: str, seed: int = 0) -> _Stepper:
    cfg = tiny_cfg(*more, f"seed={seed}")
    torch.manual_seed(seed)
    model = build_model(cfg.train, len(JOINTS))
    return _Stepper(cfg.train, model, torch.device("cpu"), len(JOINTS))


def classifier_probs(st: _Stepper, syn, real) -> torch.Tensor:
    """Softmax of the domain classifier over both domains' features (no parameter changes)."""
    st.model.eval()
    with torch.no_grad():
        fmap = st.model.extract(torch.cat([syn["image"], real["image"]]))
        p = torch.softmax(st.modules["domain_classifier"](da.pool(fmap)), dim=1)
    st.train_mode()
    return p


def state_copy(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def domain_ce_of(st, syn, real) -> float:
    p = classifier_probs(st, syn, real)
    domain = torch.tensor([0] * len(syn["image"]) + [1] * len(real["image"]))
    return float(-torch.log(p[torch.arange(len(domain)), domain]).mean())


def test_mixer_stage1_freezes_extractor_and_trains_classifier(batches):
    syn, real = batches
    # warm-up of 6 stage-1 steps: every step below is stage 1
    st = make_stepper("train.adaptation.method=mixer", "train.adaptation.mixer.warmup_steps=6")
    ext_ids = {id(p) for p in st.ext_params}
    ext_before = {n: p.detach().clone() for n, p in st.model.named_parameters() if id(p) in ext_ids}
    bn_before = {n: b.clone() for n, b in st.model.named_buffers()
                 if any(n.startswith(m_n) for m_n, m in st.model.named_modules() if m in st.ext_bns)}
    head_before = {n: p.detach().clone() for n, p in st.model.named_parameters() if id(p) not in ext_ids}
    ce_before = domain_ce_of(st, syn, real)
    for step in range(6):
        out = st.step(syn, real, step, 100)
        assert out["stage"] == 1
    ce_after = domain_ce_of(st, syn, real)
    assert ext_before and bn_before
    for n, p in st.model.named_parameters():
        if n in ext_before:
            assert torch.equal(p, ext_before[n]), f"extractor parameter {n} changed in stage 1"
    for n, b in st.model.named_buffers():
        if n in bn_before:
            assert torch.equal(b, bn_before[n]), f"extractor buffer {n} changed in stage 1"
    assert any(not torch.equal(p, head_before[n]) for n, p in st.model.named_parameters() if n in head_before)
    print(f"stage 1: classifier CE {ce_before:.4f} -> {ce_after:.4f}")
    assert ce_after < ce_before


def test_mixer_stage2_confusion_moves_frozen_classifier_toward_half(batches):
    syn, real = batches
    # 8 stage-1 steps teach the classifier; then K = 0: every later step is stage 2.
    st = make_stepper("train.adaptation.method=mixer", "train.adaptation.mixer.warmup_steps=8",
                      "train.adaptation.mixer.classifier_steps_per_extractor_step=0",
                      "train.adaptation.mixer.confusion_weight=1.0", "train.lr=0.003")
    for step in range(8):
        st.step(syn, real, step, 100)
    clf = st.modules["domain_classifier"]
    clf_before = state_copy(clf)
    gap_before = float((classifier_probs(st, syn, real)[:, 1] - 0.5).abs().mean())
    ext_before = [p.detach().clone() for p in st.ext_params]
    for step in range(8, 16):
        out = st.step(syn, real, step, 100)
        assert out["stage"] == 2
    gap_after = float((classifier_probs(st, syn, real)[:, 1] - 0.5).abs().mean())
    for k, v in clf.state_dict().items():
        assert torch.equal(v, clf_before[k]), f"frozen classifier's {k} changed in stage 2"
    assert any(not torch.equal(p, q) for p, q in zip(st.ext_params, ext_before)), "extractor did not move"
    print(f"stage 2: mean |p - 0.5| {gap_before:.4f} -> {gap_after:.4f}")
    assert gap_after < gap_before


def test_mixer_schedule():
    stages = [da.mixer_stage(s, warmup_steps=3, classifier_steps=2) for s in range(12)]
    assert stages == [1, 1, 1, 1, 1, 2, 1, 1, 2, 1, 1, 2]


def test_gradient_reversal_flips_extractor_gradients(batches):
    syn, real = batches
    st = make_stepper("train.adaptation.method=dann")
    clf = st.modules["domain_classifier"]
    x = torch.cat([syn["image"], real["image"]])
    domain = torch.tensor([0] * len(syn["image"]) + [1] * len(real["image"]))
    st.model.eval()   # the same BatchNorm behaviour in both passes

    def extractor_grads(reverse: bool) -> list[torch.Tensor]:
        feats = da.pool(st.model.extract(x))
        if reverse:
            feats = da.grad_reverse(feats, 1.0)
        loss = da.domain_ce(clf(feats), domain)
        return [g for g in torch.autograd.grad(loss, st.ext_params)]

    plain, reversed_ = extractor_grads(False), extractor_grads(True)
    total = sum(float(g.abs().sum()) for g in plain)
    assert total > 0
    for a, b in zip(plain, reversed_):
        torch.testing.assert_close(b, -a)
    # The classifier's own gradients are not reversed.
    feats = da.pool(st.model.extract(x))
    g_plain = torch.autograd.grad(da.domain_ce(clf(feats), domain), list(clf.parameters()))
    feats = da.pool(st.model.extract(x))
    g_rev = torch.autograd.grad(da.domain_ce(clf(da.grad_reverse(feats, 1.0)), domain), list(clf.parameters()))
    for a, b in zip(g_plain, g_rev):
        torch.testing.assert_close(a, b)
    assert da.dann_lambda(0.0) == 0.0 and 0.99 < da.dann_lambda(1.0) < 1.0


def test_saa_loss_is_read_only_at_the_joints(batches):
    syn, real = batches
    st = make_stepper("train.adaptation.method=saa")
    disc = st.modules["saa_discriminator"]
    x = torch.cat([syn["image"], real["image"]])
    j2d = torch.cat([syn["joints_2d_crop"], real["joints_2d_crop"]])
    vis = torch.cat([syn["visible_2d"], real["visible_2d"]])
    domain = torch.tensor([0] * len(syn["image"]) + [1] * len(real["image"]))
    with torch.no_grad():
        fmap = st.model.extract(x)
    logit_map = disc(fmap).detach().requires_grad_(True)
    b, j, h, w = logit_map.shape
    assert j == len(JOINTS) and (h, w) == (SIZE // st.model.feature_stride,) * 2
    for loss in (da.saa_discriminator_loss(da.sample_at_joints(logit_map, j2d, SIZE), domain, vis),
                 da.saa_confusion_loss(da.sample_at_joints(logit_map, j2d, SIZE), vis)):
        (grad,) = torch.autograd.grad(loss, logit_map)
        stride = SIZE / w
        for n in range(b):
            for k in range(j):
                # the cells bilinear sampling may touch around joint k of sample n
                cx = float(j2d[n, k, 0] + 0.5) / stride - 0.5
                cy = float(j2d[n, k, 1] + 0.5) / stride - 0.5
                allowed = torch.zeros(h, w, dtype=torch.bool)
                xs = {min(max(math.floor(cx), 0), w - 1), min(max(math.floor(cx) + 1, 0), w - 1)}
                ys = {min(max(math.floor(cy), 0), h - 1), min(max(math.floor(cy) + 1, 0), h - 1)}
                for yy in ys:
                    for xx in xs:
                        allowed[yy, xx] = True
                g = grad[n, k]
                assert float(g[~allowed].abs().sum()) == 0.0, (n, k)
                if vis[n, k] > 0:
                    assert float(g[allowed].abs().sum()) > 0, (n, k)
                else:
                    assert float(g.abs().sum()) == 0.0, (n, k)
    # A sample read at a joint equals channel k bilinearly interpolated there (checked at a cell centre).
    centre = torch.tensor([[[1.5 * stride - 0.5, 0.5 * stride - 0.5]] * j], dtype=torch.float32)
    read = da.sample_at_joints(logit_map[:1].detach(), centre, SIZE)
    torch.testing.assert_close(read[0], logit_map[0, :, 0, 1].detach())


def test_jo2d_lowers_the_aligned_2d_error(batches):
    syn, real = batches
    st = make_stepper()
    model = st.model
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    gt, vis = real["joints_2d_crop"], real["visible_2d"]
    # A freshly initialised net predicts (almost) one point, whose best aligned scale is 0 and
    # gives no gradient; start, as in training, from a net that has seen some synthetic poses.
    for _ in range(10):
        loss = torch.nn.functional.l1_loss(model(syn["image"]), syn["target"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    def aligned_error() -> float:
        model.eval()
        with torch.no_grad():
            pred = model(real["image"]).numpy()
        model.train()
        aligned = align_2d(pred[..., :2], gt.numpy(), vis.numpy())
        err = np.linalg.norm(aligned - gt.numpy(), axis=-1)
        return float((err * vis.numpy()).sum() / vis.numpy().sum())

    before = aligned_error()
    for _ in range(15):
        loss = da.jo2d_loss(model(real["image"]), gt, vis)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = aligned_error()
    print(f"Jo2D: mean aligned 2D error {before:.2f} px -> {after:.2f} px")
    assert after < 0.8 * before


def test_spa_moves_descriptor_to_target_and_pose_little(batches):
    syn, _ = batches
    cfg = load_config(None, ["train.adaptation.spa.steps=300"])
    target = da.spa_target(cfg.train.adaptation.spa.target, JOINTS)
    assert target.shape == (14,) and np.all(target > 0)
    poses = syn["target"].float()      # real rendered poses (normalised, root-relative)
    result = fit_spa(poses, target, JOINTS, cfg.train.adaptation.spa, seed=0)
    before, after = result["descriptor_distance_before"], result["descriptor_distance_after"]
    moved = result["mean_joint_shift"]
    bone_sum = 1.0                      # skeleton_length: the 14 bones of each pose sum to this
    print(f"SPA: descriptor distance {before:.4f} -> {after:.4f}; mean joint shift {moved:.4f} "
          f"(bones sum to {bone_sum})")
    assert after < 0.5 * before
    # "little": a small share of the mean bone length (1/14), although limb ratios changed
    assert moved < 0.5 * bone_sum / 14
    head = da.spa_head_from_state(result)
    with torch.no_grad():
        np.testing.assert_allclose(
            float((da.limb_descriptor(head(poses), JOINTS) - torch.tensor(target, dtype=torch.float32))
                  .norm(dim=1).mean()), after, rtol=1e-5)


RECIPES = sorted(p.stem for p in (REPO / "train").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_runs_one_epoch_from_the_cli(recipe, rendered_dataset, shared_data, tmp_path, capsys):
    run = tmp_path / recipe
    # A tiny random-init ResNet instead of the recipes' pretrained EfficientNet-Lite0 (the suite
    # runs that one once, in tests/test_predict.py): what a recipe adds is its adaptation.
    rc = cli_main(["train", "--config", str(REPO / "train" / f"{recipe}.yaml"), "--data", str(rendered_dataset),
                   "--out", str(run), f"data_dir={shared_data}", "train.epochs=1", "train.backbone=resnet18",
                   "train.pretrained=null", "train.width=8",
                   f"train.input_size={SIZE}", "train.batch_size=3", "train.workers=0", "train.device=cpu",
                   "train.real.train_range=[0,6]", "train.real.eval_range=[6,9]", "train.log_every_steps=1",
                   "train.adaptation.mixer.warmup_steps=1", "train.adaptation.spa.steps=10",
                   "train.adaptation.knowledge_transfer.stage1_epochs=1",
                   "train.val_fraction=0.5"])
    assert rc == 0, capsys.readouterr().err
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1"]
    assert float(rows[0]["train_loss"]) > 0 and 0.0 <= float(rows[0]["real_pck02"]) <= 1.0
    steps = list(csv.DictReader(open(run / "steps.csv")))
    assert len(steps) >= 1 and all(math.isfinite(float(s["loss"])) for s in steps)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    cfg = load_config(REPO / "train" / f"{recipe}.yaml")
    method = cfg.train.adaptation.method
    assert ckpt["config"]["train"]["adaptation"]["method"] == method
    expect = {"dann": {"domain_classifier"}, "mixer": {"domain_classifier"},
              "saa": {"saa_discriminator"},
              "knowledge_transfer": {"depth_net", "mask_net", "segmenter", "modality_classifier",
                                     "rgb_domain_classifier"}}.get(method, set())
    assert set(ckpt["modules"]) == expect
    assert (ckpt["spa"] is not None) == cfg.train.adaptation.spa.enabled
    if cfg.train.adaptation.jo2d:
        assert float(rows[0]["train_jo2d"]) > 0
    assert (run / "tensorboard").is_dir()
