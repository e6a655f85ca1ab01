"""synth.gallery on a real rendered dataset (the session fixture `rendered_dataset` from conftest.py)."""
from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from synth.gallery import write_gallery
from synth.io_utils import InputError


class _Page(HTMLParser):
    """Collects what the tests look at: sample cards, images, legend entries, the config block."""

    def __init__(self):
        super().__init__()
        self.sample_keys: list[str] = []
        self.images: list[dict] = []
        self.legend_parts: list[str] = []
        self.config_text = ""
        self._in_config = 0
        self._in_pre = False
        self.warnings: list[str] = []
        self._in_warn = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and "data-key" in a:
            self.sample_keys.append(a["data-key"])
        if tag == "div" and a.get("class") == "warn":
            self._in_warn = True
        if tag == "img":
            self.images.append(a)
        if tag == "span" and "data-part" in a:
            self.legend_parts.append(a["data-part"])
        if tag == "details" and a.get("id") == "config":
            self._in_config = 1
        elif tag == "details" and self._in_config:
            self._in_config += 1
        if tag == "pre" and self._in_config:
            self._in_pre = True

    def handle_endtag(self, tag):
        if tag == "pre":
            self._in_pre = False
        if tag == "details" and self._in_config:
            self._in_config -= 1
        if tag == "div":
            self._in_warn = False

    def handle_data(self, data):
        if self._in_pre and self._in_config:
            self.config_text += data
        if self._in_warn:
            self.warnings.append(data)


def parse(page: Path) -> _Page:
    p = _Page()
    p.feed(page.read_text())
    return p


def image_of(src: str, page: Path) -> np.ndarray:
    if src.startswith("data:"):
        data = base64.b64decode(src.split(",", 1)[1])
    else:
        data = (page.parent / src).read_bytes()
    return np.asarray(Image.open(io.BytesIO(data)))


def shard_samples(dataset: Path) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    for tar in sorted((dataset / "shards").glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                key, _, fld = Path(m.name).name.partition(".")
                out.setdefault(key, {})[fld] = tf.extractfile(m).read()
    return out


@pytest.fixture(scope="module")
def gallery(rendered_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery") / "page.html"
    samples = shard_samples(rendered_dataset)
    write_gallery(rendered_dataset, out, max_samples=len(samples) + 5)
    return out, parse(out), samples


def test_page_lists_every_sample_with_existing_images(rendered_dataset, gallery):
    page, doc, samples = gallery
    assert doc.sample_keys == list(samples)          # every key, in shard order
    meta = json.loads((rendered_dataset / "dataset.json").read_text())
    W, H = meta["image_size"]
    kinds_per_key: dict[str, set[str]] = {}
    for img in doc.images:
        arr = image_of(img["src"], page)
        scale = int(img["data-scale"])
        assert arr.shape[:2] == (H * scale, W * scale) and (scale == 1 or img["data-kind"] == "overlay")
        kinds_per_key.setdefault(img["data-key"], set()).add(img["data-kind"])
    assert all(kinds_per_key[k] == {"overlay", "mask", "parts", "depth"} for k in samples)
    assert not doc.warnings


def test_overlay_draws_the_skeleton(rendered_dataset, gallery):
    page, doc, samples = gallery
    overlays = {i["data-key"]: (image_of(i["src"], page), int(i["data-scale"]))
                for i in doc.images if i["data-kind"] == "overlay"}
    for key, members in samples.items():
        raw = np.asarray(Image.open(io.BytesIO(members.get("rgb.jpg") or members["rgb.png"])).convert("RGB"))
        over, s = overlays[key]
        raw = np.repeat(np.repeat(raw, s, axis=0), s, axis=1)    # small renders are shown enlarged
        diff = np.abs(over.astype(np.int16) - raw.astype(np.int16)).sum(axis=2)
        j2 = (np.asarray(json.loads(members["json"])["joints_2d"]) + 0.5) * s - 0.5
        H, W = raw.shape[:2]
        near = np.zeros((H, W), bool)
        at_joint = []
        for u, v in j2:
            x, y = int(round(u)), int(round(v))
            if 0 <= x < W and 0 <= y < H:
                at_joint.append(diff[y, x])
                near[max(0, y - 12):y + 13, max(0, x - 12):x + 13] = True
        assert at_joint, f"{key}: no joint inside the image"
        # Joint dots are drawn where the labels put the joints ...
        assert np.median(at_joint) > 60, key
        # ... and far from the skeleton the image is the RGB itself (up to JPEG re-encoding).
        assert diff[~near].mean() < 12, key


def test_legend_and_config_are_on_the_page(rendered_dataset, gallery):
    page, doc, _ = gallery
    meta = json.loads((rendered_dataset / "dataset.json").read_text())
    assert sorted(doc.legend_parts) == sorted(meta["parts"].values())
    assert yaml.safe_load(doc.config_text) == meta["config"]
    text = page.read_text()
    assert f"{meta['image_size'][0]} × {meta['image_size'][1]}" in text
    for tar in (rendered_dataset / "shards").glob("*.tar"):
        assert tar.name in text


def test_default_location_files_mode_and_limit(rendered_dataset, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(rendered_dataset, ds)
    page = write_gallery(ds, max_samples=1, inline=False)
    assert page == ds / "gallery" / "index.html"
    doc = parse(page)
    assert doc.sample_keys == [next(iter(shard_samples(ds)))]
    assert doc.images and all(not i["src"].startswith("data:") for i in doc.images)
    assert all((page.parent / i["src"]).is_file() for i in doc.images)
    assert not list(page.parent.glob(".*.tmp"))


def test_damaged_datasets(rendered_dataset, tmp_path):
    with pytest.raises(InputError, match="dataset.json"):
        write_gallery(tmp_path)
    ds = tmp_path / "ds"
    shutil.copytree(rendered_dataset, ds)
    tar = sorted((ds / "shards").glob("*.tar"))[0]
    # A sample whose mask is missing is still shown, with a warning.
    with tarfile.open(tar) as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf.getmembers()]
    first_key = Path(members[0][0].name).name.partition(".")[0]
    with tarfile.open(tar, "w") as tf:
        for m, data in members:
            if m.name.endswith(f"{first_key}.mask.png"):
                continue
            tf.addfile(m, io.BytesIO(data))
    doc = parse(write_gallery(ds, max_samples=2))
    assert first_key in doc.sample_keys and any("mask.png" in w for w in doc.warnings)
    # A truncated shard is a one-line error naming the shard.
    tar.write_bytes(tar.read_bytes()[:700])
    with pytest.raises(InputError, match=tar.name):
        write_gallery(ds)
