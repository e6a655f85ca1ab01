"""render.clothing.mode=mesh: one sample's MakeHuman outfit, shoes, hat, hair, eyebrows and
eyelashes, fitted to the posed body, with their surfaces, and the body's skin texture.

Draws (config `render.clothing.mesh`): an outfit always (with probability `gender_match` among
those tagged for the body's gender or for neither), shoes, a hat (only over short hair or none),
hair, eyebrows and eyelashes each with their probability. The outfit's texture comes from the
garment photos in its own UV layout (synth.textures.garment_uv); shoes and hats are solid
colours; hair takes a natural colour (`render.clothing.mesh.hair_colours`, by default the
bundled synth/data/hair_colours.yaml), eyebrows the hair colour darker, eyelashes near black. The body's texture is skin with tinted lips, eyelids and ears,
and the scalp in the hair's colour where hair is worn. The covered body vertices are pushed in.

Every draw comes from the rng `dress` is given: the scene sampler's own dressing stream of the
sample (synth.rng.Stream.MESH_DRESSING), apart from the pose, shape, camera and lights.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml

from synth.body.clothing import catalog
from synth.body.clothing.hm08 import phenotype_target_weights
from synth.body.clothing.wardrobe import Wardrobe
from synth.body.model import PosedRig
from synth.config import ClothingConfig, MeshClothingConfig
from synth.io_utils import InputError
from synth.resources import resolve_data_path
from synth.scene import RIG_BONES, BodyMesh, Surface, WornMesh
from synth.textures.face import paint_face
from synth.textures.garment_uv import FabricPatches, GarmentLayout, garment_texture
from synth.textures.simple import HAIR, UVRegions

SHOE_COLOURS = [(0.06, 0.05, 0.04), (0.18, 0.11, 0.06), (0.32, 0.2, 0.12), (0.1, 0.1, 0.11),
                (0.85, 0.85, 0.83), (0.55, 0.55, 0.56), (0.12, 0.16, 0.3)]
HAT_COLOURS = [(0.08, 0.08, 0.08), (0.3, 0.29, 0.28), (0.28, 0.2, 0.13), (0.45, 0.4, 0.33)]
_SHADER = {"outfit": "cloth", "shoes": "solid", "hat": "solid", "hair": "hair", "eyebrows": "solid",
           "eyelashes": "solid"}
# Anny's age scale: 0.5 ~ 25 years, 1.0 ~ 90 years; grey hair becomes likely past ~0.75 (~55 y)
_GREY_AGE = (0.7, 1.0)
_WAIST_ABOVE_HIPS_M = 0.08
_KEY = "render.clothing.mesh"


def load_hair_colours(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, list[str], float]:
    try:
        spec = yaml.safe_load(Path(path).read_text())
        names = list(spec["colours"])
        rgb = np.array([[int(spec["colours"][n]["hex"][i:i + 2], 16) for i in (1, 3, 5)] for n in names],
                       dtype=np.float64) / 255.0
        weights = np.array([float(spec["colours"][n]["weight"]) for n in names])
        grey = [g for g in spec.get("grey", []) if g in names]
        jitter = float(spec.get("jitter", 0.0))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, IndexError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:120]
        raise InputError(f"{path}: not a hair colour palette ({e.__class__.__name__}: {first})") from None
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise InputError(f"{path}: hair colour weights must be finite, non-negative and not all zero")
    if not 0.0 <= jitter <= 1.0:
        raise InputError(f"{path}: jitter {jitter} must be in [0, 1]")
    return names, rgb, weights / weights.sum(), grey, jitter


def check_wardrobe(mesh: MeshClothingConfig, assets: dict[str, list[catalog.AssetEntry]]) -> None:
    """The names `render.clothing.mesh` gives are among `assets` and its hair palette reads
    (InputError naming the key or file): cheap, for the render's input check before anything is
    written."""
    catalog.select(assets["outfit"], mesh.outfits, f"{_KEY}.outfits")
    catalog.select(assets["hair"], mesh.hair, f"{_KEY}.hair")
    load_hair_colours(resolve_data_path(mesh.hair_colours, f"{_KEY}.hair_colours"))


class MeshDresser:
    """See the module docstring. Built once per worker (the wardrobe, layouts and palettes)."""

    def __init__(self, clothing: ClothingConfig, body_model, regions: UVRegions,
                 assets: dict[str, list[catalog.AssetEntry]], garments: dict, cache_dir: Path | None = None):
        """clothing: `render.clothing`; assets: `catalog.list_assets(data_dir)`; garments: the
        garment photos by region (synth.textures.simple.garment_library); cache_dir: the run's
        cache folder (bindings go to its clothing/)."""
        self.mc = clothing.mesh
        self.flat_probability = clothing.flat_probability
        self.wardrobe = Wardrobe(body_model, assets, cache_dir)
        cat = self.wardrobe.catalog
        self.outfits = catalog.select(cat["outfit"], self.mc.outfits, f"{_KEY}.outfits")
        self.hair = catalog.select(cat["hair"], self.mc.hair, f"{_KEY}.hair")
        self.regions = regions
        self.garments = garments
        self.texture_size = regions.size
        self.hair_names, self.hair_rgb, self.hair_p, self.grey, self.hair_jitter = load_hair_colours(
            resolve_data_path(self.mc.hair_colours, f"{_KEY}.hair_colours"))
        self._body_model = body_model
        self._layouts: dict[str, GarmentLayout] = {}
        self._fabric = FabricPatches()
        self._neutral_hm08 = None
        self._waist_z = None

    def warm(self) -> None:
        """Parse and bind every asset now (else each is on its first use; ~3 s for all)."""
        for entries in self.wardrobe.catalog.values():
            for e in entries:
                self.wardrobe.bound(e)
        for e in self.outfits:
            self._layout(e)

    # ---------------------------------------------------------------- draws
    def draw(self, phenotype: dict, rng: np.random.Generator) -> list[catalog.AssetEntry]:
        cat, mc = self.wardrobe.catalog, self.mc
        gender = "female" if phenotype.get("gender", 0.5) >= 0.5 else "male"   # Anny: 0 male, 1 female
        chosen = [catalog.draw(self.outfits, rng, gender, mc.gender_match)]
        hair = None
        if self.hair and rng.random() < mc.hair_probability:
            hair = catalog.draw(self.hair, rng, gender, mc.gender_match)
            chosen.append(hair)
        if cat["shoes"] and rng.random() < mc.shoes_probability:
            chosen.append(catalog.draw(cat["shoes"], rng))
        if cat["hat"] and rng.random() < mc.hat_probability and (hair is None or "short" in hair.tags):
            chosen.append(catalog.draw(cat["hat"], rng))
        if cat["eyebrows"] and rng.random() < mc.eyebrows_probability:
            chosen.append(catalog.draw(cat["eyebrows"], rng))
        if cat["eyelashes"] and rng.random() < mc.eyelashes_probability:
            chosen.append(catalog.draw(cat["eyelashes"], rng))
        return chosen

    def hair_colour(self, age: float, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        p = self.hair_p.copy()
        if self.grey and self.mc.grey_from_age:
            lo, hi = _GREY_AGE
            share = float(np.clip((age - lo) / (hi - lo), 0.0, 1.0)) * 0.8   # up to 80 % grey/white
            g = np.array([n in self.grey for n in self.hair_names])
            if share > 0 and g.any():
                p = np.where(g, p / p[g].sum() * share, p / p[~g].sum() * (1 - share))
        i = int(rng.choice(len(p), p=p))
        rgb = np.clip(self.hair_rgb[i] * (1 + rng.uniform(-self.hair_jitter, self.hair_jitter, 3)), 0, 1)
        return self.hair_names[i], rgb

    # ---------------------------------------------------------------- layouts
    def _layout(self, entry: catalog.AssetEntry) -> GarmentLayout:
        lay = self._layouts.get(entry.id)
        if lay is None:
            if self._neutral_hm08 is None:
                neutral = {k: 0.5 for k in self._body_model.phenotype_labels}
                rest = self._body_model.rest(neutral)
                self._neutral_hm08 = self.wardrobe.rig.vertices(
                    rest["rest_vertices"][0].numpy(), phenotype_target_weights(self._body_model.model, neutral))
                # a garment's waist line: a little above the hip joints (the top of the thighs)
                heads = rest["rest_bone_heads"][0]
                hips = 0.5 * (heads[RIG_BONES.index("LeftUpLeg"), 2] + heads[RIG_BONES.index("RightUpLeg"), 2])
                self._waist_z = float(hips) + _WAIST_ABOVE_HIPS_M
            b = self.wardrobe.bound(entry)
            lay = GarmentLayout(b.face_uvs, b.face_parts, b.fit_rest(self._neutral_hm08), b.faces,
                                self._waist_z, self.texture_size)
            self._layouts[entry.id] = lay
        return lay

    # ---------------------------------------------------------------- per sample
    def dress(self, body: BodyMesh, rig: PosedRig, phenotype: dict, skin_texture: np.ndarray,
              rng: np.random.Generator, times: dict
              ) -> tuple[BodyMesh, np.ndarray, list[WornMesh], dict]:
        """The body (covered vertices pushed in), its texture, the worn meshes and their labels."""
        mc = self.mc
        entries = self.draw(phenotype, rng)
        t0 = time.perf_counter()
        fitted = self.wardrobe.fit(entries, rig)
        vertices = self.wardrobe.cover(body, fitted, mc.push_in_m)
        times["fit"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        hair_name, hair_rgb = self.hair_colour(phenotype.get("age", 0.5), rng)
        worn, worn_labels, garment_labels = [], [], []
        flat = rng.random() < self.flat_probability
        has_hair = False
        for f in fitted:
            e = f.entry
            label = {"asset": e.id, "kind": e.kind}
            texture = None
            if e.kind == "outfit":
                texture, garment_labels = garment_texture(self._layout(e), self.garments, self._fabric, flat, rng)
                for g in garment_labels:
                    g["asset"] = e.id
                colour, roughness = (0.5, 0.5, 0.5), 0.8
            elif e.kind == "hair":
                has_hair = True
                colour, roughness = tuple(hair_rgb), 0.45
                label["colour"] = hair_name
            elif e.kind == "eyebrows":
                colour, roughness = tuple(hair_rgb * 0.6), 0.8
            elif e.kind == "eyelashes":
                colour, roughness = (0.03, 0.025, 0.02), 0.6
            elif e.kind == "shoes":
                colour = SHOE_COLOURS[int(rng.integers(len(SHOE_COLOURS)))]
                roughness = float(rng.uniform(0.3, 0.7))
            else:   # hat
                colour = HAT_COLOURS[int(rng.integers(len(HAT_COLOURS)))]
                roughness = 0.8
            if e.kind in ("shoes", "hat"):
                label["colour"] = [round(float(c), 3) for c in colour]
            b = f.bound
            worn.append(WornMesh(asset=e.id, kind=e.kind, vertices=f.vertices, faces=b.faces, face_uvs=b.face_uvs,
                                 face_parts=b.face_parts,
                                 surface=Surface(shader=_SHADER[e.kind], color=tuple(float(c) for c in colour),
                                                 texture=texture, roughness=roughness)))
            worn_labels.append(label)
        tex = skin_texture
        if has_hair:
            # the scalp under the hair in the hair's colour (a little darker: in its shadow)
            tex[self.regions.is_region[HAIR]] = np.clip(hair_rgb * 0.8 * 255, 0, 255).astype(np.uint8)
        face = paint_face(tex, rng)
        times["texture"] = time.perf_counter() - t0
        posed = BodyMesh(vertices=vertices, faces=body.faces, face_uvs=body.face_uvs, face_parts=body.face_parts,
                         joints=body.joints, backend=body.backend, shape=body.shape)
        labels = {"garments": garment_labels, "worn": worn_labels, "face": face}
        return posed, tex, worn, labels
