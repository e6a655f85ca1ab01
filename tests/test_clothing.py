"""Mesh clothing on the real data: MakeHuman asset parsing (good and bad files), the hm08 -> Anny
map, fitting that follows the phenotype and the pose on real Anny bodies and MoCap poses, the
covered skin pushed in, and rendered labels (parts, check_dataset.py) with a real skirt."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from scipy.spatial import cKDTree

from conftest import CHECKER, small_config
from synth.body import create_body_model
from synth.body.clothing.catalog import draw, list_assets
from synth.body.clothing.fitting import skin
from synth.body.clothing.hm08 import HM08_VERTICES
from synth.body.clothing.mhclo import load_proxy, parse_mhclo, parse_obj
from synth.body.clothing.wardrobe import Wardrobe
from synth.config import ConfigError, load_config
from synth.dataset.scene_sampler import SceneSampler, facing_direction
from synth.geometry import focal_from_fov, intrinsics, look_at
from synth.io_utils import InputError
from synth.scene import PART_IDS, Camera

SKIRT = "female_elegantsuit01"
TIGHTS = "female_sportsuit01"      # crop top and full-length leggings: the tightest outfit


@pytest.fixture(scope="module")
def assets(shared_data):
    return shared_data / "makehuman_assets"


@pytest.fixture(scope="module")
def anny():
    return create_body_model(load_config().body)


@pytest.fixture(scope="module")
def wardrobe(anny, shared_data):
    return Wardrobe(anny, list_assets(shared_data))


@pytest.fixture(scope="module")
def poses(shared_data):
    from synth.poses.sampling import load_clips
    pool = load_clips(shared_data, subjects=["16"], fps=10, progress=False)
    return pool.subset(np.random.default_rng(0).choice(len(pool), 6, replace=False))


def _entry(wardrobe, name):
    return next(e for es in wardrobe.catalog.values() for e in es if e.name == name)


NEUTRAL = {"gender": 0.5, "age": 0.5, "muscle": 0.5, "weight": 0.5, "height": 0.5, "proportions": 0.5}


# ---------------------------------------------------------------- parsing
def test_real_assets_parse_with_their_bindings(assets):
    p = load_proxy(assets / "clothes" / SKIRT / f"{SKIRT}.mhclo", HM08_VERTICES)
    b = p.binding
    assert len(b.ref_indices) == len(p.mesh.vertices) == 2205
    assert b.scale_refs["x_scale"] == (5399, 11998, 1.398) and b.z_depth == 50 and "female" in b.tags
    d = set(b.delete_verts.tolist())
    assert {1355, 1398, 1520, 17975} <= d and 1399 not in d        # "1355 - 1398 ... 1520 ... 17975"
    assert np.allclose(b.ref_weights[0], [0.24713, 0.36272, 0.39015])
    assert (p.mesh.faces < len(p.mesh.vertices)).all() and p.mesh.face_uvs.shape == (len(p.mesh.faces), 3, 2)
    # a keyword line inside the verts block (shoes02: `material` after `verts 0`) does not end it
    shoes = load_proxy(assets / "clothes" / "shoes02" / "shoes02.mhclo", HM08_VERTICES)
    assert len(shoes.binding.ref_indices) == len(shoes.mesh.vertices)
    # single-index lines: the vertex follows one hm08 vertex exactly
    lashes = parse_mhclo(assets / "eyelashes" / "eyelashes01" / "eyelashes01.mhclo", HM08_VERTICES)
    assert np.allclose(lashes.ref_weights, [1, 0, 0]) and np.allclose(lashes.offsets, 0)


def test_every_asset_of_the_data_loads(assets, shared_data):
    cat = list_assets(shared_data)
    counts = {k: len(v) for k, v in cat.items()}
    assert counts == {"outfit": 12, "shoes": 6, "hat": 2, "hair": 10, "eyebrows": 12, "eyelashes": 4}
    for entries in cat.values():
        for e in entries:
            p = load_proxy(e.path, HM08_VERTICES)
            assert len(p.mesh.faces) > 0 and e.id.startswith("makehuman_assets/")


def _corrupt(tmp_path, assets, edit, obj_edit=None):
    src = assets / "eyebrows" / "eyebrow001"
    dst = tmp_path / "eyebrow001"
    shutil.copytree(src, dst)
    mh = dst / "eyebrow001.mhclo"
    mh.write_text(edit(mh.read_text()))
    if obj_edit is not None:
        obj = dst / "eyebrow001.obj"
        obj.write_text(obj_edit(obj.read_text()))
    return mh


def _replace_line(text, starts, new):
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(starts))
    lines[i] = new
    return "\n".join(lines) + "\n", i + 1


@pytest.mark.parametrize("fault, pattern", [
    ("five_fields", r"eyebrow001\.mhclo:{line}: vertex binding has 5 fields"),
    ("not_a_number", r"eyebrow001\.mhclo:{line}: vertex binding: not a number"),
    ("no_y_scale", r"eyebrow001\.mhclo: no y_scale line"),
    ("backwards_range", r"eyebrow001\.mhclo:{line}: delete_verts: range 10 - 5 runs backwards"),
    ("index_range", r"eyebrow001\.mhclo:{line}: vertex index out of range 0\.\.19157"),
    ("obj_short", r"eyebrow001\.mhclo: 124 vertex bindings but eyebrow001\.obj has 123 vertices"),
    ("obj_face", r"eyebrow001\.obj:{line}: face vertex index out of range"),
])
def test_bad_asset_files_are_one_line_errors_naming_file_and_line(tmp_path, assets, fault, pattern):
    line = {}

    def first_binding(new):
        def edit(text):
            lines = text.splitlines()
            i = lines.index("verts 0") + 1
            lines[i] = new
            line["n"] = i + 1
            return "\n".join(lines) + "\n"
        return edit

    obj_edit = None
    if fault == "five_fields":
        edit = first_binding("1 2 3 0.5 0.5")
    elif fault == "not_a_number":
        edit = first_binding("1 2 3 0.5 0.5 x 0 0 0")
    elif fault == "index_range":
        edit = first_binding("1 2 99999 0.2 0.3 0.5 0 0 0")
    elif fault == "no_y_scale":
        def edit(text):
            return "\n".join(ln for ln in text.splitlines() if not ln.startswith("y_scale")) + "\n"
    elif fault == "backwards_range":
        def edit(text):
            new = text.rstrip("\n") + "\ndelete_verts\n10 - 5\n"
            line["n"] = new.splitlines().index("10 - 5") + 1
            return new
    else:
        def edit(text):
            return text
        if fault == "obj_short":
            def obj_edit(text):
                lines = text.splitlines()
                n = sum(ln.startswith("v ") for ln in lines)
                del lines[max(k for k, ln in enumerate(lines) if ln.startswith("v "))]
                # faces naming the removed last vertex would fail first: point them at vertex 1
                return "\n".join(re.sub(rf"(?<= ){n}/", "1/", ln) if ln.startswith("f ") else ln
                                 for ln in lines) + "\n"
        else:
            def obj_edit(text):
                new, line["n"] = _replace_line(text, "f ", "f 1/1 2/2 9999/3")
                return new
    path = _corrupt(tmp_path, assets, edit, obj_edit)
    with pytest.raises(InputError, match=pattern.format(line=line.get("n"))) as e:
        load_proxy(path, HM08_VERTICES)
    assert "\n" not in str(e.value)


def test_missing_files_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.mhclo: file not found"):
        parse_mhclo(tmp_path / "nothing.mhclo")
    (tmp_path / "empty.obj").write_text("# nothing\n")
    with pytest.raises(InputError, match=r"empty\.obj: no vertices or no faces"):
        parse_obj(tmp_path / "empty.obj")
    with pytest.raises(InputError, match=r"makehuman_assets: no MakeHuman assets"):
        list_assets(tmp_path)


# ---------------------------------------------------------------- hm08 and Anny
def test_hm08_map_is_exact_on_the_body_vertices(wardrobe, anny):
    rig = wardrobe.rig
    template = anny.model.template_vertices.double().cpu().numpy()
    mapped = np.nonzero(rig.anny_index >= 0)[0]
    assert len(mapped) == len(template)                              # every Anny vertex has its hm08 vertex
    err = np.abs(rig.base_vertices[mapped] - template[rig.anny_index[mapped]]).max()
    assert err < 1e-6 and rig.map_max_distance_m < 1e-6
    # the body group's vertices are Anny's, but for the 32 that Anny removes from the crotch
    body = np.unique(rig.body_faces)
    unmapped = body[rig.anny_index[body] < 0]
    assert set(unmapped.tolist()) == set(range(1778, 1794)) | set(range(8450, 8466))
    # MakeHuman's targets rebuild Anny's phenotypes, and the rig file's weights are Anny's
    assert rig.rebuild_max_error_m < 1e-5 and rig.weights_max_error < 1e-4


def test_numpy_skinning_reproduces_annys_posed_body(anny, poses):
    m = anny.model
    dense = np.zeros((m.vertex_bone_indices.shape[0], len(m.bone_labels)), np.float32)
    idx = m.vertex_bone_indices.cpu().numpy()
    np.add.at(dense, (np.repeat(np.arange(len(idx)), idx.shape[1]), idx.ravel()),
              m.vertex_bone_weights.cpu().numpy().ravel())
    for k in range(3):
        body, rig = anny.pose_rigged(poses.rotations[k], poses.rest_directions[k], NEUTRAL)
        assert np.abs(skin(rig.rest_vertices, dense, rig.bone_transforms) - body.vertices).max() < 1e-4


# ---------------------------------------------------------------- fitting
def _surface_distance(body_vertices, points):
    return cKDTree(body_vertices).query(points)[0]


def test_fitted_garment_follows_the_phenotype(wardrobe, anny):
    e = _entry(wardrobe, TIGHTS)
    b = wardrobe.bound(e)
    ident = np.eye(4, dtype=np.float32)[None].repeat(len(anny.model.bone_labels), 0)
    fits = {}
    for name, ph in {"short": {**NEUTRAL, "height": 0.05}, "tall": {**NEUTRAL, "height": 0.95},
                     "thin": {**NEUTRAL, "weight": 0.05}, "heavy": {**NEUTRAL, "weight": 0.95, "gender": 0.0}}.items():
        rest = anny.rest(ph)["rest_vertices"][0].numpy()
        from synth.body.clothing.hm08 import phenotype_target_weights
        hm08 = wardrobe.rig.vertices(rest, phenotype_target_weights(anny.model, ph))
        g = skin(b.fit_rest(hm08), b.skin, ident)       # identity pose: the rest fit itself
        fits[name] = (rest, g)
        d = _surface_distance(rest, g)
        assert np.percentile(d, 95) < 0.03 and d.max() < 0.05, name      # tight on every body
    (rs, gs), (rt, gt) = fits["short"], fits["tall"]
    # the garment's height scales as the height of the body part it covers
    covered = b.covered_body
    body_ratio = np.ptp(rt[covered, 2]) / np.ptp(rs[covered, 2])
    assert body_ratio > 1.15
    assert abs(np.ptp(gt[:, 2]) / np.ptp(gs[:, 2]) - body_ratio) < 0.02 * body_ratio
    (rn, gn), (rh, gh) = fits["thin"], fits["heavy"]
    # from the thin to the heavy body each garment vertex moves as the body surface under it
    _, near = cKDTree(rn).query(gn)
    body_move = rh[near] - rn[near]
    assert np.median(np.linalg.norm(body_move, axis=1)) > 0.01
    assert np.median(np.linalg.norm((gh - gn) - body_move, axis=1)) < 0.005


def test_fitted_garments_follow_the_pose(wardrobe, anny, poses):
    tight, skirt = _entry(wardrobe, TIGHTS), _entry(wardrobe, SKIRT)
    for k in range(len(poses)):
        body, rig = anny.pose_rigged(poses.rotations[k], poses.rest_directions[k], NEUTRAL)
        rest_fit = [wardrobe.bound(e).fit_rest(wardrobe.rig.vertices(rig.rest_vertices, rig.phenotype_weights))
                    for e in (tight, skirt)]
        fitted = wardrobe.fit([tight, skirt], rig)
        for f, rest in zip(fitted, rest_fit):
            # the offset to the nearest body vertex keeps its length from rest to pose
            d_rest, j = cKDTree(rig.rest_vertices).query(rest)
            d_pose = np.linalg.norm(f.vertices - body.vertices[j], axis=1)
            assert np.percentile(np.abs(d_pose - d_rest), 95) < 0.01, f.entry.name
            bound = 0.06 if f.entry.name == TIGHTS else 0.2      # a skirt's hem hangs off the legs
            assert _surface_distance(body.vertices, f.vertices).max() < bound, f.entry.name
            assert np.isfinite(f.vertices).all()


def test_covered_skin_is_pushed_behind_the_garment(wardrobe, anny, poses):
    from synth.dataset.coverage import skin_through
    outfit, shoes = _entry(wardrobe, "female_casualsuit01"), _entry(wardrobe, "shoes01")
    before, after = [], []
    for k in range(3):
        body, rig = anny.pose_rigged(poses.rotations[k], poses.rest_directions[k], NEUTRAL)
        fitted = wardrobe.fit([outfit, shoes], rig)
        covered = np.unique(np.concatenate([f.bound.covered_body for f in fitted]))
        garments = [(f.vertices, f.bound.faces) for f in fitted]
        for depth, out in ((0.0, before), (0.012, after)):
            v = wardrobe.cover(body, fitted, depth)
            out.append(skin_through(v, body.faces, covered, garments, size=160)["share"])
        # only covered vertices move, inward
        moved = np.nonzero(np.abs(wardrobe.cover(body, fitted, 0.012) - body.vertices).max(1) > 0)[0]
        assert set(moved.tolist()) <= set(covered.tolist())
    assert np.mean(before) > 0.02          # the bare body pokes through the tight jeans
    assert max(after) < 0.01


def test_gender_tags_steer_the_draws(wardrobe):
    rng = np.random.default_rng(0)
    outfits = wardrobe.catalog["outfit"]
    female = [draw(outfits, rng, "female", 1.0) for _ in range(50)]
    assert all(e.gender in (None, "female") for e in female)
    anyone = {draw(outfits, rng, "female", 0.0).name for _ in range(200)}
    assert len(anyone) == len(outfits)


def test_mesh_clothing_config_keys_are_checked():
    with pytest.raises(ConfigError, match=r"render\.clothing\.mesh\.outfits"):
        load_config(None, ["render.clothing.mesh.outfits=shirt"])
    with pytest.raises(ConfigError, match=r"render\.clothing\.mesh\.hat_probability"):
        load_config(None, ["render.clothing.mesh.hat_probability=1.5"])
    with pytest.raises(ConfigError, match=r"render\.clothing\.mesh\.outfits"):
        load_config(None, ["render.clothing.mesh.outfits=[]"])
    with pytest.raises(ConfigError, match=r"render\.clothing\.mesh\.push_in_m"):
        load_config(None, ["render.clothing.mesh.push_in_m=0.2"])
    with pytest.raises(ConfigError, match=r"render\.clothing\.mode.*needs body\.backend=anny"):
        load_config(None, ["body.backend=smplx"])
    cfg = load_config(None, ["render.clothing.mesh.outfits=[female_elegantsuit01]"])
    assert cfg.render.clothing.mode == "mesh" and cfg.render.clothing.mesh.outfits == ["female_elegantsuit01"]


def test_binding_cache_is_atomic_and_bounded(anny, shared_data, tmp_path):
    cat = list_assets(shared_data)
    e = next(x for x in cat["eyebrows"] if x.name == "eyebrow001")
    folder = tmp_path / "clothing" / "bound"
    folder.mkdir(parents=True)
    # bindings of this asset from other data copies / rigs, written earlier
    stale = [folder / f"eyebrow001-{i:016x}-rig0-anny0.0.{i}.npz" for i in range(3)]
    other = folder / "eyebrow002-0000000000000000-rig0-anny0.0.0.npz"
    for k, p in enumerate(stale + [other]):
        p.write_bytes(b"old")
        os.utime(p, (1000 + k, 1000 + k))
    wd = Wardrobe(anny, cat, tmp_path)
    b = wd.bound(e)
    kept = sorted(p.name for p in folder.glob("eyebrow001-*.npz"))
    assert len(kept) == 2 and stale[2].name in kept          # the new binding and the newest old one
    assert other.is_file()                                    # another asset's binding stays
    assert not list(folder.glob(".*"))                         # no temporary file left behind
    # a new Wardrobe reads the binding back from disk
    again = Wardrobe(anny, cat, tmp_path).bound(e)
    assert np.array_equal(again.faces, b.faces) and np.allclose(again.offsets, b.offsets)


def test_mesh_mode_fingerprints_the_makehuman_assets_and_names_them_in_the_card(shared_data, tmp_path):
    from synth.dataset.card import input_sets
    from synth.dataset.identity import input_fingerprints
    data = tmp_path / "data"
    data.mkdir()
    for sub in ("backgrounds", "clothing", "hdri", "cmu_mocap"):
        (data / sub).symlink_to(shared_data / sub)
    shutil.copytree(shared_data / "makehuman_assets" / "eyebrows", data / "makehuman_assets" / "eyebrows")
    mesh = load_config(None, [f"data_dir={data}"])
    photo = load_config(None, [f"data_dir={data}", "render.clothing.mode=photo"])
    before = input_fingerprints(mesh)["data_listing_sha256"]
    (data / "makehuman_assets" / "eyebrows" / "eyebrow001" / "eyebrow001.obj").write_text("v 0 0 0\n")
    assert input_fingerprints(mesh)["data_listing_sha256"] != before
    assert input_fingerprints(photo)["data_listing_sha256"] == input_fingerprints(
        load_config(None, [f"data_dir={data}", "render.clothing.mode=photo"]))["data_listing_sha256"]
    assert "makehuman_assets" in input_sets(mesh) and "makehuman_assets" not in input_sets(photo)
    # the render's input check lists the assets from their headers: a .mhclo without its .obj stops it
    (data / "makehuman_assets" / "eyebrows" / "eyebrow002" / "eyebrow002.obj").unlink()
    with pytest.raises(InputError, match=r"eyebrow002\.mhclo: obj_file eyebrow002\.obj not found beside it"):
        list_assets(data)


def test_unknown_asset_names_and_a_bad_palette_stop_the_render_before_it_writes(shared_data, cache_dir, tmp_path):
    from synth.dataset.render_job import render_dataset
    cfg = small_config(shared_data, cache_dir, **{"render.clothing.mesh.outfits": "[kilt01]"})
    with pytest.raises(InputError, match=r"config key 'render\.clothing\.mesh\.outfits': unknown asset\(s\) "
                                         r"\['kilt01'\]"):
        render_dataset(cfg, tmp_path / "ds", progress=False)
    palette = tmp_path / "palette.yaml"
    palette.write_text("colours:\n  black: {hex: '#1c1714', weight: -1}\n")
    cfg = small_config(shared_data, cache_dir, **{"render.clothing.mesh.hair_colours": str(palette)})
    with pytest.raises(InputError, match=r"palette\.yaml: hair colour weights must be finite, non-negative"):
        render_dataset(cfg, tmp_path / "ds", progress=False)
    palette.write_text("colours: [unclosed\n")
    with pytest.raises(InputError, match=r"palette\.yaml: not a hair colour palette \(\w+") as e:
        render_dataset(cfg, tmp_path / "ds", progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "ds" / "dataset.json").exists()


def test_a_broken_asset_stops_the_render_before_the_output_records_it(anny, shared_data, cache_dir, tmp_path):
    """The MakeHuman assets are fingerprinted in mesh mode, so they are parsed before dataset.json
    is written (those with a cached binding of the same content are known good and skipped)."""
    from synth.body.clothing.wardrobe import check_assets
    from synth.dataset.render_job import render_dataset
    data = tmp_path / "data"
    data.mkdir()
    for sub in ("backgrounds", "clothing", "hdri", "cmu_mocap"):
        (data / sub).symlink_to(shared_data / sub)
    for kind in ("clothes", "hair", "eyebrows", "eyelashes"):
        (data / "makehuman_assets" / kind).mkdir(parents=True)
        for item in (shared_data / "makehuman_assets" / kind).iterdir():
            (data / "makehuman_assets" / kind / item.name).symlink_to(item)
    brow = data / "makehuman_assets" / "eyebrows" / "eyebrow001"
    brow.unlink()
    shutil.copytree(shared_data / "makehuman_assets" / "eyebrows" / "eyebrow001", brow)
    obj = brow / "eyebrow001.obj"
    obj.write_text(obj.read_text().replace("\nf ", "\nf 1/1 2/2 99999/3\nf ", 1))
    with pytest.raises(InputError, match=r"eyebrow001\.obj:\d+: face vertex index out of range") as e:
        render_dataset(small_config(data, cache_dir), tmp_path / "ds", progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "ds" / "dataset.json").exists()
    # a cached binding of an asset's exact content vouches for it: only uncached assets are parsed
    cat = list_assets(data)
    n = sum(len(v) for v in cat.values())
    assert check_assets({"eyebrows": [x for x in cat["eyebrows"] if x.name != "eyebrow001"]}, None) == 11
    wd = Wardrobe(anny, cat, tmp_path / "cache")
    for x in cat["eyelashes"]:
        wd.bound(x)
    assert check_assets({k: v for k, v in cat.items() if k != "eyebrows"}, tmp_path / "cache") == n - 12 - 4


# ---------------------------------------------------------------- rendered labels
@pytest.fixture(scope="module")
def skirt_config(shared_data, cache_dir):
    return small_config(shared_data, cache_dir, **{"render.clothing.mesh.outfits": f"[{SKIRT}]"})


@pytest.fixture(scope="module")
def skirt_sampler(skirt_config):
    return SceneSampler(skirt_config)


def test_the_wardrobe_has_its_own_random_stream(skirt_sampler, shared_data, cache_dir):
    """Changing what a sample wears leaves its pose, shape, camera, lights and background."""
    from synth.dataset.dressing import MeshDresser
    s = skirt_sampler
    dresser, specs = s.dresser, []
    try:
        for p in (1.0, 0.0):           # with hair and shoes, then bald and barefoot
            cfg = small_config(shared_data, cache_dir, **{"render.clothing.mesh.hair_probability": p,
                                                          "render.clothing.mesh.shoes_probability": p})
            s.dresser = MeshDresser(cfg.render.clothing, s.body, s.regions, list_assets(shared_data), s.garments)
            specs.append(s.scene(0, 1)[0])
    finally:
        s.dresser = dresser
    first, second = specs
    kinds = [{w["kind"] for w in spec.labels["worn"]} for spec in specs]
    assert {"hair", "shoes"} <= kinds[0] and not {"hair", "shoes"} & kinds[1]
    for key in ("pose", "body", "skin_tone", "background"):
        assert first.labels[key] == second.labels[key], key
    # lights and camera are placed about the body's (pushed-in) vertices and what it wears: their
    # positions move a little, their draws do not
    a, b = first.labels["lights"], second.labels["lights"]
    assert a["environment"] == b["environment"] and len(a["lights"]) == len(b["lights"])
    for la, lb in zip(a["lights"], b["lights"]):
        assert {k: v for k, v in la.items() if k != "location"} == {k: v for k, v in lb.items() if k != "location"}
    for key in ("fov_y_deg", "azimuth_from_facing_deg", "roll_deg"):
        assert first.labels["camera"][key] == pytest.approx(second.labels["camera"][key]), key
    # the photo-like framing's draws (size, camera height, offset, truncation) stay too; the
    # elevation follows from the camera height and the distance to what the body wears
    fa, fb = first.labels["camera"]["framing"], second.labels["camera"]["framing"]
    for key in ("mode", "person_size", "camera_height_m", "offset", "truncation"):
        assert fa.get(key) == fb.get(key), key


def test_skirt_pixels_carry_the_thigh_and_the_dataset_passes_the_checker(skirt_config, skirt_sampler, tmp_path):
    from synth.dataset.render_job import render_dataset
    from synth.render import Renderer
    cfg = skirt_config
    spec, _ = skirt_sampler.scene(0, 0)
    assert [w["asset"] for w in spec.labels["worn"] if w["kind"] == "outfit"] == [
        f"makehuman_assets/clothes/{SKIRT}/{SKIRT}.mhclo"]
    # seen from the front, level with the hips
    v = spec.body.vertices
    centre = 0.5 * (v.min(0) + v.max(0))
    fwd = facing_direction(spec.body.joints)
    W = H = 96
    R, t = look_at(centre + 3.0 * fwd, centre, 0.0)
    spec.camera = Camera(K=intrinsics(focal_from_fov(math.radians(40), H), W, H), R=R, t=t, width=W, height=H)
    with Renderer(W, H, samples=4, denoise=False) as r:
        dressed = r.render(spec)
        outfit_only = [w for w in spec.worn if w.kind == "outfit"]
        others = [w for w in spec.worn if w.kind != "outfit"]
        spec.worn = others
        bare = r.render(spec)
        spec.worn = outfit_only + others
    # skirt pixels: where the outfit is seen in front of the body, below the hips
    hips = [spec.camera.project(spec.body.joints[[9, 12]])[1][:, 1].max()]
    rows = np.arange(H)[:, None] > hips[0]
    skirt = rows & (dressed.mask > 0) & ((bare.mask == 0) | (dressed.depth_mm + 5 < bare.depth_mm))
    assert skirt.sum() > 30
    thigh = np.isin(dressed.parts, [PART_IDS["left_thigh"], PART_IDS["right_thigh"]])
    assert thigh[skirt].mean() > 0.6
    # where the bare body shows a part, the skirt over it carries that part in most pixels
    both = skirt & (bare.parts > 0)
    assert (dressed.parts[both] == bare.parts[both]).mean() > 0.8
    out = tmp_path / "ds"
    render_dataset(cfg, out, progress=False)
    with tarfile.open(out / "shards" / "shard-000000.tar") as tf:
        labels = [json.loads(tf.extractfile(m).read()) for m in tf.getmembers() if m.name.endswith(".json")]
    assert all(any(w["kind"] == "outfit" for w in lab["worn"]) for lab in labels)
    assert all(g["asset"].endswith(f"{SKIRT}.mhclo") and g["id"] for lab in labels for g in lab["garments"])
    res = subprocess.run([sys.executable, str(CHECKER), str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
