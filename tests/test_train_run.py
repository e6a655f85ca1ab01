"""Training and evaluation on a real rendered dataset (the `rendered_dataset` fixture of
tests/conftest.py): data items, a short training run, exact resume, evaluation, bad input."""
import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from synth.config import ConfigError, load_config
from synth.io_utils import InputError
from synth.train.data import (BONES, PoseShardDataset, list_shards, read_dataset_meta,
                              split_shards, train_val_datasets)
from synth.train.trainer import evaluate, load_checkpoint, train_from_config

TINY = ["train.backbone=resnet18", "train.width=8", "train.input_size=64", "train.batch_size=4",
        "train.workers=0", "train.device=cpu", "train.lr=0.001", "train.val_fraction=0.5",
        "train.real.log_pck=false"]


def tiny_cfg(*more: str):
    return load_config(None, TINY + list(more))


@pytest.fixture(scope="module")
def two_shard_dataset(rendered_dataset, tmp_path_factory) -> Path:
    """The rendered dataset itself when it has two or more shards; otherwise a copy whose one
    shard is duplicated under the next name, so that a whole shard can be held out."""
    shards = list_shards(rendered_dataset)
    if len(shards) >= 2:
        return Path(rendered_dataset)
    out = tmp_path_factory.mktemp("two_shards")
    shutil.copy(rendered_dataset / "dataset.json", out / "dataset.json")
    (out / "shards").mkdir()
    shutil.copy(shards[0], out / "shards" / "shard-000000.tar")
    shutil.copy(shards[0], out / "shards" / "shard-000001.tar")
    return out


def test_items_are_crops_with_normalised_targets(two_shard_dataset):
    cfg = tiny_cfg("train.skeleton_length=2.0")
    train_ds, val_ds = train_val_datasets(two_shard_dataset, cfg.train)
    shards = list_shards(two_shard_dataset)
    assert val_ds is not None and val_ds.shards == split_shards(shards, 0.5)[1]
    assert set(train_ds.shards).isdisjoint(val_ds.shards)
    names = read_dataset_meta(two_shard_dataset)["joints"]
    idx = {n: i for i, n in enumerate(names)}
    for i in range(min(len(train_ds), 3)):
        item = train_ds[i]
        assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
        assert item["image"].std() > 0.05                       # a picture, not a blank
        target = item["target"].numpy().astype(np.float64)
        assert np.abs(target[idx["pelvis"]]).max() == 0.0
        bone_sum = sum(np.linalg.norm(target[idx[b]] - target[idx[a]]) for a, b in BONES)
        assert bone_sum == pytest.approx(2.0, rel=1e-5)
        # The scale undoes the normalisation: back to the labelled root-relative metres.
        j3d = item["joints_3d"].numpy()
        np.testing.assert_allclose(target * float(item["scale"]), j3d - j3d[idx["pelvis"]], atol=1e-5)
        # The person fills the crop: the joints in the image inside it, spanning most of it.
        j2d = item["joints_2d_crop"].numpy()[np.asarray(train_ds.labels(i)["joints_in_image"])]
        assert j2d.min() >= -0.5 and j2d.max() <= 64
        assert (j2d.max(0) - j2d.min(0)).max() > 0.6 * 64


def test_dataloader_workers_give_the_same_batches(two_shard_dataset):
    cfg = tiny_cfg()
    ds, _ = train_val_datasets(two_shard_dataset, cfg.train)
    serial = [b for b in DataLoader(ds, batch_size=4, num_workers=0)]
    parallel = [b for b in DataLoader(ds, batch_size=4, num_workers=2)]
    assert len(serial) == len(parallel) > 0
    for a, b in zip(serial, parallel):
        assert a["key"] == b["key"]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])


def test_train_writes_outputs_and_evaluate_reports(two_shard_dataset, tmp_path):
    cfg = tiny_cfg("train.epochs=2")
    run = tmp_path / "run"
    summary = train_from_config(cfg, two_shard_dataset, run, resume=False)
    assert summary["epochs_completed"] == 2 and np.isfinite(summary["train_loss"])
    assert summary["val"] is not None and summary["val"]["samples"] == summary["val_samples"] > 0
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.yaml", "log.csv", "steps.csv",
                                                     "tensorboard"]
    assert any((run / "tensorboard").iterdir())
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(float(r["val_mpjpe_mm"]) > 0 and float(r["train_loss"]) > 0 for r in rows)
    assert load_config(run / "config.yaml").train.width == 8
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["epoch"] == 2 and ckpt["config"]["seed"] == cfg.seed

    result = evaluate(run / "checkpoint.pt", two_shard_dataset, tmp_path / "eval.json")
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["mpjpe_mm"] == pytest.approx(result["mpjpe_mm"])
    assert result["split"] == "val" and result["samples"] == summary["val_samples"]
    # The checkpoint reproduces the trainer's own last validation numbers.
    assert result["mpjpe_mm"] == pytest.approx(summary["val"]["mpjpe_mm"], rel=1e-6)
    assert np.isfinite(result["pa_mpjpe_mm"]) and result["pa_mpjpe_mm"] > 0
    assert 0.0 <= result["auc"] <= result["pck150"] <= 1.0
    assert result["per_joint_mpjpe_mm"]["pelvis"] == 0.0
    assert len(result["per_joint_mpjpe_mm"]) == 15


def _two_epochs_straight_and_resumed(dataset, tmp_path, *overrides):
    """Train 2 epochs in one run (RUN a), and 1 epoch then resumed to 2 (RUN b); returns the
    straight and first-run summaries, the resumed summary and both final checkpoints."""
    straight = train_from_config(tiny_cfg("train.epochs=2", *overrides), dataset, tmp_path / "a", resume=False)
    first = train_from_config(tiny_cfg("train.epochs=1", *overrides), dataset, tmp_path / "b", resume=False)
    resumed = train_from_config(tiny_cfg("train.epochs=2", *overrides), dataset, tmp_path / "b", resume=True)
    assert resumed["resumed_from_epoch"] == 1
    return (straight, first, resumed, load_checkpoint(tmp_path / "a" / "checkpoint.pt"),
            load_checkpoint(tmp_path / "b" / "checkpoint.pt"))


def _assert_same_tensors(a: dict, b: dict) -> None:
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), name


def test_resume_gives_the_same_weights_as_one_run(two_shard_dataset, tmp_path):
    straight, first, resumed, a, b = _two_epochs_straight_and_resumed(two_shard_dataset, tmp_path)
    assert first["epochs_completed"] == 1
    assert a["epoch"] == b["epoch"] == 2
    _assert_same_tensors(a["model"], b["model"])
    assert resumed["train_loss"] == pytest.approx(straight["train_loss"], rel=1e-9)
    rows = list(csv.DictReader(open(tmp_path / "b" / "log.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    # A resumed run must keep the architecture of its checkpoint.
    with pytest.raises(ConfigError, match="train.width"):
        train_from_config(tiny_cfg("train.epochs=3", "train.width=16"), two_shard_dataset, tmp_path / "b")


def test_bad_data_dirs_are_named(rendered_dataset, tmp_path):
    cfg = tiny_cfg()
    with pytest.raises(InputError, match=re.escape(str(tmp_path))):
        train_from_config(cfg, tmp_path, tmp_path / "run")
    shutil.copy(rendered_dataset / "dataset.json", tmp_path / "dataset.json")
    with pytest.raises(InputError, match="shards"):
        train_from_config(cfg, tmp_path, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("damage", ["garbage_header", "truncated"])
def test_corrupt_shard_is_named(rendered_dataset, tmp_path, damage):
    shutil.copy(rendered_dataset / "dataset.json", tmp_path / "dataset.json")
    (tmp_path / "shards").mkdir()
    source = list_shards(rendered_dataset)[0]
    good = tmp_path / "shards" / "shard-000000.tar"
    bad = tmp_path / "shards" / "shard-000001.tar"
    shutil.copy(source, good)
    data = bytearray(source.read_bytes())
    if damage == "garbage_header":
        # Overwrite the second member's header: tarfile alone would stop there quietly.
        import tarfile
        with tarfile.open(source) as tf:
            second = tf.getmembers()[1].offset
        data[second:second + 512] = b"\xff" * 512
    else:
        data = data[: len(data) // 2]
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="shard-000001.tar"):
        PoseShardDataset(tmp_path, [good, bad], 64)
    with pytest.raises(InputError, match="shard-000001.tar"):
        train_from_config(tiny_cfg(), tmp_path, tmp_path / "run")


def test_adaptation_resume_gives_the_same_weights_as_one_run(two_shard_dataset, shared_data, tmp_path):
    """Exact resume with the extra modules, both optimisers, the real-image stream, the mixer's
    stage counter (a stage-1 step in epoch 1, a stage-2 step in epoch 2) and the SPA head."""
    more = [f"data_dir={shared_data}", "train.adaptation.method=mixer", "train.adaptation.jo2d=true",
            "train.adaptation.mixer.warmup_steps=1", "train.adaptation.mixer.classifier_steps_per_extractor_step=0",
            "train.real.train_range=[0,8]", "train.real.eval_range=[8,12]", "train.real.log_pck=true",
            "train.adaptation.spa.enabled=true", "train.adaptation.spa.steps=5", "train.log_every_steps=1"]
    straight, _, resumed, a, b = _two_epochs_straight_and_resumed(two_shard_dataset, tmp_path, *more)
    assert a["step"] == b["step"] == 2
    _assert_same_tensors(a["model"], b["model"])
    _assert_same_tensors(a["modules"]["domain_classifier"], b["modules"]["domain_classifier"])
    _assert_same_tensors(a["spa"]["state"], b["spa"]["state"])
    steps = list(csv.DictReader(open(tmp_path / "b" / "steps.csv")))
    assert [s["stage"] for s in steps] == ["1", "2"]
    assert resumed["real_pck02"] == pytest.approx(straight["real_pck02"])


def test_a_step_budget_and_real_only_training(two_shard_dataset, shared_data, tmp_path):
    """`train.steps` fixes the number of optimisation steps whatever the dataset size (the last
    epoch cut short); `train.data_source=real` trains on LSP 2D labels alone, without --data."""
    cfg = tiny_cfg("train.steps=3", "train.batch_size=2")
    train_ds, _ = train_val_datasets(two_shard_dataset, cfg.train)
    # The trainer drops a last batch of one sample (BatchNorm); as many epochs as 3 steps need.
    per_epoch = len(train_ds) // 2 if len(train_ds) % 2 == 1 else -(-len(train_ds) // 2)
    summary = train_from_config(cfg, two_shard_dataset, tmp_path / "steps", resume=False)
    ckpt = load_checkpoint(tmp_path / "steps" / "checkpoint.pt")
    assert ckpt["step"] == 3 and ckpt["epoch"] == summary["epochs_completed"] == -(-3 // per_epoch)
    # The training skeletons' mean size (metres per normalised unit) travels with the run.
    assert 3.0 < ckpt["skeleton_scale_m"] < 5.0      # the 14 bones of an adult sum to ~4 m
    real = tiny_cfg(f"data_dir={shared_data}", "train.data_source=real", "train.real.train_range=[0,6]",
                    "train.real.eval_range=[6,10]", "train.real.log_pck=true", "train.steps=2",
                    "train.batch_size=3")
    summary = train_from_config(real, None, tmp_path / "real", resume=False)
    assert summary["train_samples"] == 6 and summary["val"] is None and 0.0 <= summary["real_pck02"] <= 1.0
    rows = list(csv.DictReader(open(tmp_path / "real" / "log.csv")))
    assert float(rows[-1]["train_loss"]) > 0 and float(rows[-1]["train_pose_2d"]) > 0
    assert load_checkpoint(tmp_path / "real" / "checkpoint.pt")["skeleton_scale_m"] is None
    with pytest.raises(ConfigError, match="data_source"):
        tiny_cfg(f"data_dir={shared_data}", "train.data_source=real", "train.adaptation.jo2d=true")
    with pytest.raises(InputError, match="--data"):
        train_from_config(tiny_cfg(), None, tmp_path / "no_data")
