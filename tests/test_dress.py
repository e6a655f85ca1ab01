"""Dressed-body textures (`synth dress`): candidate poses and views of the real Anny body, baking
into its UV texture, a small library from the real garment photos, resuming it, and a real tiny
render that draws from it and records the garments each sample wears."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import CHECKER, small_config

from synth.io_utils import InputError
from synth.scene import JOINTS

N_LIBRARY = 2
TEX_CFG = {"textures.size": 256, "textures.view_size": 256}


@pytest.fixture(scope="module")
def dress_cfg(shared_data, cache_dir):
    return small_config(shared_data, cache_dir, **TEX_CFG)


@pytest.fixture(scope="module")
def dresser(dress_cfg):
    from synth.textures.library import dresser_for
    return dresser_for(dress_cfg)


@pytest.fixture(scope="module")
def library(tmp_path_factory, dress_cfg, dresser) -> Path:
    from synth.textures.library import write_library
    out = tmp_path_factory.mktemp("texlib") / "lib"
    write_library(dress_cfg, out, N_LIBRARY, progress=False, dresser=dresser)
    return out


def test_candidate_poses_swing_the_arms_and_legs(dresser):
    """At least three arm and two leg candidates; the posed limbs point at their angles."""
    views = dresser.views
    names = [v.candidate.name for v in views.views]
    assert len(views.for_region("upper")) >= 3 and len(views.for_region("lower")) >= 2, names
    j = {n: i for i, n in enumerate(JOINTS)}
    phen = {k: 0.5 for k in views.body.phenotype_labels}
    widths = []
    for i, v in enumerate(views.views):
        body = views.body.pose(views.poses.rotations[i], views.poses.rest_directions[i], phen)
        if v.candidate.region == "upper":
            for side, sign in (("left", 1), ("right", -1)):
                arm = body.joints[j[f"{side}_wrist"]] - body.joints[j[f"{side}_shoulder"]]
                angle = np.degrees(np.arctan2(sign * arm[0], -arm[2]))
                assert abs(angle - v.candidate.angle_deg) < 3.0, (v.candidate, side, angle)
                assert abs(arm[1]) < 0.05 * np.linalg.norm(arm)           # in the frontal plane
            widths.append(v.region_masks["upper_long"].any(0).sum())
        else:
            leg = body.joints[j["left_ankle"]] - body.joints[j["left_hip"]]
            assert abs(np.degrees(np.arctan2(leg[0], -leg[2])) - v.candidate.angle_deg) < 3.0
    assert widths == sorted(widths) and widths[0] < widths[-1]        # arms further out: wider silhouette


def test_views_map_pixels_to_the_facing_surface(dresser):
    """Front and back views see the body's front (-Y) and back (+Y) surfaces; upper and lower
    silhouettes overlap around the waist only."""
    v = dresser.views.views[0]
    faces, verts = dresser.views.faces, v.vertices
    normals = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    front = v.face_front[v.face_front >= 0]
    back = v.face_back[v.face_back >= 0]
    assert (normals[front, 1] < 0).mean() > 0.9 and (normals[back, 1] > 0).mean() > 0.9
    assert abs(int((v.face_front >= 0).sum()) - int((v.face_back >= 0).sum())) < 0.02 * (v.face_front >= 0).sum()
    up, low = v.region_masks["upper_long"], v.region_masks["lower_long"]
    rows = np.nonzero((up & low).any(1))[0]
    assert 0 < len(rows) < 0.1 * v.face_front.shape[0]
    # the pixel -> UV map lands inside the texture
    uv = v.uv_at(v.face_front, v.bary_front, dresser.views.face_uvs)
    ok = ~np.isnan(uv[..., 0])
    assert ok.sum() == (v.face_front >= 0).sum() and (uv[ok] >= 0).all() and (uv[ok] <= 1).all()


def test_bake_covers_the_garment_texels_front_back_and_sides(dresser):
    """A uniformly coloured 'warped garment' reaches every texel of its region, and no other."""
    from synth.textures.bake import bake_garment, seam_heights
    atlas = dresser.atlas
    seam = seam_heights(atlas, np.random.default_rng(0), 0.015, 0.04)
    H, W = dresser.views.frame.height, dresser.views.frame.width
    for region, variant in (("upper", "upper_long"), ("lower", "lower_short")):
        texels = atlas.garment_texels(variant, seam)
        tex = np.zeros((atlas.size, atlas.size, 3), np.uint8)
        warped = np.zeros((H, W, 3), np.uint8)
        warped[:, :] = (0, 200, 0)
        valid = np.zeros((H, W), bool)
        valid[H // 3:H // 2, W // 3:2 * W // 3] = True      # the fill must reach the rest
        idx = next(i for i, v in enumerate(dresser.views.views) if v.candidate.region == region)
        cov = bake_garment(tex, atlas, idx, warped, valid, texels)
        got = tex[atlas.ys, atlas.xs]
        assert (got[texels] == (0, 200, 0)).all()
        assert (got[~texels] == 0).all()
        assert cov["front_share"] > 0.4 and cov["back_share"] > 0.2, cov
    # the noisy seam moves the waist line around the body
    torso = atlas.is_part["torso"]
    assert np.ptp(seam[torso]) > 0.01


def test_library_textures_wear_the_photos(library, dresser):
    """Each entry: a full texture, both garments warped closer to the silhouette than the
    similarity placement, and its upper arms / thighs coloured like the garment photo."""
    index = json.loads((library / "library.json").read_text())
    assert index["n"] == N_LIBRARY and len(index["entries"]) == N_LIBRARY
    for e in index["entries"]:
        info = json.loads((library / e["json"]).read_text())
        tex = cv2.imread(str(library / e["png"]))[:, :, ::-1]
        assert tex.shape == (256, 256, 3)
        assert [g["region"] for g in info["garments"]] == ["upper", "lower"]
        for g in info["garments"]:
            d = g["contour_distance_px"]
            assert d["after"] < d["before"], g
            assert g["candidate"] == min(g["deformation"], key=g["deformation"].get)
            assert (Path(dresser.data_dir) / g["id"]).is_file()
            photo = next(p for p in dresser.photos[g["region"]] if p.id == g["id"])
            seg = dresser.segmentation(photo)
            garment_mean = seg.image[seg.mask].reshape(-1, 3).mean(0)
            part = "upper_arm" if g["region"] == "upper" else "thigh"
            sel = dresser.atlas.is_part[part]
            tex_mean = tex[dresser.atlas.ys[sel], dresser.atlas.xs[sel]].reshape(-1, 3).mean(0)
            skin = np.array(info["skin_tone"]["rgb"], float)
            assert np.linalg.norm(tex_mean - garment_mean) < np.linalg.norm(tex_mean - skin) or \
                np.linalg.norm(tex_mean - garment_mean) < 30, (g["id"], tex_mean, garment_mean, skin)
        assert info["timings_s"]["segment"] >= 0 and "bake" in info["timings_s"]


def test_library_resumes_and_is_reproducible(library, dress_cfg, dresser):
    from synth.textures.library import write_library
    png1 = (library / "tex_00001.png").read_bytes()
    mtime0 = (library / "tex_00000.png").stat().st_mtime_ns
    (library / "tex_00001.json").unlink()                # an interrupted entry: PNG without JSON
    index = write_library(dress_cfg, library, N_LIBRARY + 1, progress=False, dresser=dresser)
    assert index["written"] == 2 and index["n"] == N_LIBRARY + 1
    assert (library / "tex_00000.png").stat().st_mtime_ns == mtime0
    assert (library / "tex_00001.png").read_bytes() == png1   # the same rng per entry: the same texture
    index = write_library(dress_cfg, library, N_LIBRARY + 1, progress=False)   # nothing to do: no body built
    assert index["written"] == 0


def test_render_draws_from_the_library_and_records_garments(library, shared_data, cache_dir, tmp_path):
    from synth.dataset.render_job import render_dataset
    cfg = small_config(shared_data, cache_dir, **{"render.image_size": "[64, 64]", "dataset.shards": 1,
                                                  "dataset.samples_per_shard": 2,
                                                  "render.clothing.mode": "library",
                                                  "textures.library": str(library)})
    out = tmp_path / "ds"
    render_dataset(cfg, out, progress=False)
    entries = {json.loads(p.read_text())["name"]: json.loads(p.read_text()) for p in library.glob("tex_*.json")}
    with tarfile.open(out / "shards" / "shard-000000.tar") as tf:
        labels = [json.loads(tf.extractfile(m).read()) for m in tf.getmembers() if m.name.endswith(".json")]
    assert len(labels) == 2
    for lab in labels:
        entry = entries[lab["texture_library"]["entry"]]
        assert [g["id"] for g in lab["garments"]] == [g["id"] for g in entry["garments"]]
        assert all(g["kind"] == "library" and g["id"].startswith("clothing/") for g in lab["garments"])
        assert lab["skin_tone"] == entry["skin_tone"]
    r = subprocess.run([sys.executable, str(CHECKER), str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_missing_library_is_one_line_error(tmp_path):
    from synth.textures.library import TextureLibrary
    with pytest.raises(InputError, match=r"library\.json: no texture library index"):
        TextureLibrary(tmp_path)


def test_resuming_with_other_settings_is_refused(library, dress_cfg):
    from synth.textures.library import write_library
    other = dress_cfg.model_copy(update={"seed": dress_cfg.seed + 1})
    with pytest.raises(InputError, match=r"library\.json: the library was written with a different configuration"):
        write_library(other, library, N_LIBRARY, progress=False)


def test_dressing_gallery_page_shows_the_steps(library):
    """The page holds, per garment, photo / mask / matched contours / warp and the dressed body
    rendered from three sides (real Cycles renders, tiny)."""
    from synth.gallery.dressing import write_dressing_page
    page = write_dressing_page(library, max_bodies=1, n_garment_bodies=1, render_size=48, samples=2)
    text = page.read_text()
    for caption in ("upper:", "lower:", "mask", "matched:", "MLS-warped", "front", "side", "back",
                    "Dressed bodies", "deformation"):
        assert caption in text, caption
    assert text.count("data:image/png;base64,") == 2 * 4 + 4 + 1   # 2 garments x 4, texture + 3 views, grid


def test_texel_sampling_handles_more_texels_than_cv2_map_rows():
    """A 512^2 texture's garment has > 32767 front texels (cv2.remap's limit per map side)."""
    from synth.textures.bake import sample_bilinear
    img = np.random.default_rng(0).integers(0, 256, (50, 60, 3)).astype(np.uint8)
    px = np.random.default_rng(1).uniform(0, 49, (70000, 2))
    px[:3] = [[0, 0], [59, 49], [10, 20]]
    out = sample_bilinear(img, px)
    assert out.shape == (70000, 3)
    assert (out[:3] == img[[0, 49, 20], [0, 59, 10]]).all()


def test_a_finished_library_stays_the_same_and_datasets_from_it_go_on(dress_cfg, dresser, shared_data, cache_dir,
                                                                      tmp_path, capsys):
    """`synth dress` on a finished library is a no-op that leaves library.json (what renders
    fingerprint) as it was, byte for byte; the run's counters go to library.stats.json, and a
    dataset rendered from the library adds its next shard afterwards."""
    from synth import cli
    from synth.dataset.render_job import render_dataset
    from synth.textures.library import write_library
    lib = tmp_path / "lib"
    write_library(dress_cfg, lib, 1, progress=False, dresser=dresser)
    index_bytes = (lib / "library.json").read_bytes()
    stats = json.loads((lib / "library.stats.json").read_text())
    assert stats["written"] == 1 and "written" not in json.loads(index_bytes)
    render_cfg = small_config(shared_data, cache_dir, **{"render.image_size": "[32, 32]", "render.samples": 1,
                                                        "dataset.shards": 2, "dataset.samples_per_shard": 1,
                                                        "render.clothing.mode": "library", "textures.library": str(lib)})
    assert render_dataset(render_cfg, tmp_path / "ds", shards=[0], progress=False)["rendered"] == [0]

    args = [f"{k}={v}" for k, v in TEX_CFG.items()] + [f"data_dir={shared_data}", f"cache_dir={cache_dir}",
                                                        "poses.subjects=['16']"]
    mtime = (lib / "library.json").stat().st_mtime_ns
    assert cli.main(["dress", "--n", "1", "--out", str(lib), "--quiet", *args]) == 0
    assert json.loads(capsys.readouterr().out)["written"] == 0
    assert (lib / "library.json").read_bytes() == index_bytes and (lib / "library.json").stat().st_mtime_ns == mtime
    assert json.loads((lib / "library.stats.json").read_text())["written"] == 0
    # an entry made again (its JSON lost): the same texture, so the same index (timings are stats)
    (lib / "tex_00000.json").unlink()
    assert write_library(dress_cfg, lib, 1, progress=False, dresser=dresser)["written"] == 1
    assert (lib / "library.json").read_bytes() == index_bytes
    assert render_dataset(render_cfg, tmp_path / "ds", shards=[1], progress=False)["rendered"] == [1]


@pytest.mark.parametrize("n", ["0", "-3"])
def test_dress_needs_at_least_one_texture(n, tmp_path, capsys):
    from synth import cli
    assert cli.main(["dress", "--n", n, "--out", str(tmp_path / "lib"), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"synth dress: error: --n {n}: a library needs at least one texture (n >= 1)", err
    assert not (tmp_path / "lib").exists()
