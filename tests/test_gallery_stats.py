"""The statistics page (synth gallery DATASET --stats) on the session's real rendered dataset."""
from __future__ import annotations

import json
import shutil
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from synth.gallery.stats import CLIPPED_LEVEL, write_stats_page
from synth.io_utils import InputError


class _Stats(HTMLParser):
    def __init__(self):
        super().__init__()
        self.grid: list[tuple[str, str]] = []
        self.srcs: list[str] = []
        self.summary: dict[str, str] = {}
        self._row: list[str] = []
        self._in_summary = False
        self._cell = None
        self.layer_cards = 0
        self._in_layers = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src", ""))
            if "data-shard" in a:
                self.grid.append((a["data-shard"], a["data-key"]))
        if tag == "table" and a.get("id") == "summary":
            self._in_summary = True
        if tag in ("th", "td") and self._in_summary:
            self._cell = ""
        if tag == "div" and a.get("id") == "layers":
            self._in_layers = True
        if tag == "div" and a.get("class") == "sample" and self._in_layers:
            self.layer_cards += 1

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        if tag == "tr" and self._in_summary:
            if len(self._row) == 2:
                self.summary[self._row[0]] = self._row[1]
            self._row = []
        if tag == "table":
            self._in_summary = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _parse(path: Path) -> _Stats:
    p = _Stats()
    p.feed(path.read_text())
    return p


def _all(rendered_dataset: Path):
    out = []
    for tar in sorted((rendered_dataset / "shards").glob("*.tar")):
        groups: dict = {}
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                key, _, fld = Path(m.name).name.partition(".")
                groups.setdefault(key, {})[fld] = tf.extractfile(m).read()
        out += [(tar.name, k, g) for k, g in sorted(groups.items())]
    return out


def test_stats_page_figures_grid_and_layers(rendered_dataset, tmp_path):
    page = write_stats_page(rendered_dataset, tmp_path / "stats.html", grid_samples=4, layer_samples=2, seed=5)
    p = _parse(page)
    samples = _all(rendered_dataset)
    # self-contained: every image a data URI
    assert p.srcs and all(s.startswith("data:image/") for s in p.srcs)
    assert p.summary["samples"] == f"{len(samples)} in 2 shards"
    # the clipped share recomputed from the pixels
    shares = []
    for _, _, g in samples:
        rgb = cv2.imdecode(np.frombuffer(g.get("rgb.jpg") or g["rgb.png"], np.uint8), cv2.IMREAD_COLOR)
        m = cv2.imdecode(np.frombuffer(g["mask.png"], np.uint8), cv2.IMREAD_UNCHANGED) > 127
        shares.append(((rgb >= CLIPPED_LEVEL).all(-1) & m).sum() / m.sum())
    key = next(k for k in p.summary if k.startswith("mean clipped share"))
    assert p.summary[key] == f"{np.mean(shares) * 100:.1f}%"
    truncated = np.mean([not all(json.loads(g["json"])["joints_in_image"]) for _, _, g in samples])
    assert p.summary["truncated (a joint outside the image)"] == f"{truncated * 100:.1f}%"
    # the grid: the seeded draw, without repeats, and a different seed draws other samples
    assert len(p.grid) == 4 and len(set(p.grid)) == 4
    assert set(p.grid) <= {(s, k) for s, k, _ in samples}
    again = _parse(write_stats_page(rendered_dataset, tmp_path / "again.html", grid_samples=4, layer_samples=2,
                                    seed=5))
    assert again.grid == p.grid
    others = {tuple(_parse(write_stats_page(rendered_dataset, tmp_path / f"s{s}.html", grid_samples=4,
                                            layer_samples=0, seed=s)).grid) for s in range(6)}
    assert len(others) > 1
    assert p.layer_cards == 2


def test_stats_page_escapes_and_reports_bad_input(rendered_dataset, tmp_path):
    ds = tmp_path / "ds<&>"
    shutil.copytree(rendered_dataset, ds)
    text = write_stats_page(ds, grid_samples=2, layer_samples=1).read_text()
    assert "ds&lt;&amp;&gt;" in text and "ds<&>" not in text
    with pytest.raises(InputError, match="dataset.json"):
        write_stats_page(tmp_path / "nothing")
    with pytest.raises(InputError, match="grid_samples"):
        write_stats_page(ds, grid_samples=0)


def test_stats_cli(rendered_dataset, tmp_path, capsys):
    from synth.cli import main
    target = tmp_path / "page.html"
    assert main(["gallery", str(rendered_dataset), "--stats", "--out", str(target), "--max-samples", "3"]) == 0
    assert target.is_file() and "statistics page" in capsys.readouterr().out
    assert len(_parse(target).grid) == 3
