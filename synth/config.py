"""The one configuration that drives every stage.

Defaults ship in `synth/defaults.yaml`; a user file (`--config FILE`) and `key.sub=value`
overrides are merged on top. Unknown keys and values of the wrong type are errors that name the
key, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A bad configuration value; the message names the key or file."""


def load_defaults() -> dict:
    with open(DEFAULTS_PATH) as f:
        return yaml.safe_load(f)


def _merge(base: dict, extra: dict, where: str, prefix: str = "") -> None:
    for key, value in extra.items():
        dotted = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"{where}: unknown config key '{dotted}'")
        if isinstance(base[key], dict) and not isinstance(value, dict):
            raise ConfigError(f"{where}: config key '{dotted}' must be a mapping, got {value!r}")
        if isinstance(base[key], dict) and isinstance(value, dict) and not _is_leaf_mapping(base[key]):
            _merge(base[key], value, where, dotted + ".")
        else:
            base[key] = _coerce(base[key], value, dotted, where)


def _is_leaf_mapping(d: dict) -> bool:
    """Distribution specs ({dist: ..., low: ...}, {low:, high:}) are replaced whole."""
    return "low" in d or "dist" in d


def _coerce(default: Any, value: Any, key: str, where: str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: config key '{key}' must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: config key '{key}' must be a number, got {value!r}")
        return type(default)(value) if isinstance(default, float) else value
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where}: config key '{key}' must be a string, got {value!r}")
    if isinstance(default, list) and not isinstance(value, list):
        raise ConfigError(f"{where}: config key '{key}' must be a list, got {value!r}")
    return value


def parse_override(text: str) -> dict:
    """'render.samples=32' -> {'render': {'samples': 32}} (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': value is not valid YAML ({e.__class__.__name__})") from None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """Defaults, then the file at `path`, then `overrides`; validated."""
    cfg = load_defaults()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            user = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{p}: not valid YAML{line}") from None
        if not isinstance(user, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
        _merge(cfg, user, str(p))
    for o in overrides:
        _merge(cfg, parse_override(o), "override")
    validate(cfg)
    return cfg


def _check_range(cfg: dict, dotted: str, lo: float | None = None, hi: float | None = None) -> None:
    node: Any = cfg
    for p in dotted.split("."):
        node = node[p]
    if (lo is not None and node < lo) or (hi is not None and node > hi):
        span = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ConfigError(f"config key '{dotted}' = {node!r} is out of range {span}")


def _check_choice(cfg: dict, dotted: str, choices: tuple) -> None:
    node: Any = cfg
    for p in dotted.split("."):
        node = node[p]
    if node not in choices:
        raise ConfigError(f"config key '{dotted}' = {node!r} must be one of {list(choices)}")


def _check_dist(cfg: dict, dotted: str, lo: float, hi: float) -> None:
    node: Any = cfg
    for p in dotted.split("."):
        node = node[p]
    if not isinstance(node, dict) or "low" not in node or "high" not in node:
        raise ConfigError(f"config key '{dotted}' must be a mapping with 'low' and 'high'")
    a, b = node["low"], node["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)):
        raise ConfigError(f"config key '{dotted}': low and high must be numbers")
    if not (lo <= a <= b <= hi):
        raise ConfigError(f"config key '{dotted}': need {lo} <= low <= high <= {hi}, got {a}, {b}")


def validate(cfg: dict) -> None:
    if not isinstance(cfg["seed"], int) or cfg["seed"] < 0:
        raise ConfigError(f"config key 'seed' must be a non-negative integer, got {cfg['seed']!r}")
    _check_choice(cfg, "body.backend", ("anny", "smplx"))
    for k in cfg["body"]["phenotype"]:
        _check_dist(cfg, f"body.phenotype.{k}", 0.0, 1.0)
    size = cfg["render"]["image_size"]
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and 16 <= v <= 8192 for v in size)):
        raise ConfigError(f"config key 'render.image_size' must be [W, H] with 16 <= W, H <= 8192, got {size!r}")
    _check_choice(cfg, "render.engine", ("CYCLES",))
    _check_choice(cfg, "render.device", ("cpu", "gpu"))
    _check_choice(cfg, "render.image_format", ("jpg", "png"))
    _check_choice(cfg, "render.clothing.mode", ("photo", "flat", "library"))
    _check_range(cfg, "render.samples", 1)
    _check_range(cfg, "render.cycles.adaptive_threshold", 0.0, 1.0)
    _check_range(cfg, "render.cycles.adaptive_min_samples", 0)
    for k in ("max_bounces", "diffuse_bounces", "glossy_bounces", "transmission_bounces", "transparent_bounces"):
        v = cfg["render"]["cycles"][k]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 1024:
            raise ConfigError(f"config key 'render.cycles.{k}' must be a whole number in [0, 1024], got {v!r}")
    _check_choice(cfg, "render.cycles.denoise_quality", ("HIGH", "BALANCED", "FAST"))
    _check_choice(cfg, "render.cycles.denoise_prefilter", ("NONE", "FAST", "ACCURATE"))
    tile = cfg["render"]["cycles"]["tile_size"]
    if not isinstance(tile, int) or isinstance(tile, bool) or not (tile == 0 or 8 <= tile <= 8192):
        raise ConfigError(f"config key 'render.cycles.tile_size' must be 0 or a whole number in [8, 8192], got {tile!r}")
    _check_range(cfg, "render.jpeg_quality", 1, 100)
    _check_range(cfg, "render.lights.hdri_probability", 0.0, 1.0)
    _check_range(cfg, "render.clothing.flat_probability", 0.0, 1.0)
    if cfg["render"]["clothing"]["mode"] == "library" and not cfg["textures"]["library"]:
        raise ConfigError("config key 'textures.library' must name a `synth dress` folder "
                          "with render.clothing.mode=library")
    _check_range(cfg, "textures.size", 64, 8192)
    _check_range(cfg, "textures.view_size", 64, 4096)
    _check_choice(cfg, "textures.mls.mode", ("rigid", "similarity", "affine"))
    _check_range(cfg, "textures.mls.grid_step", 1, 64)
    _check_range(cfg, "textures.contour_points", 16, 4096)
    _check_range(cfg, "textures.control_points", 3, 4096)
    _check_range(cfg, "textures.region_overlap_m", 0.0, 0.3)
    _check_range(cfg, "textures.seam.noise_m", 0.0, 0.2)
    _check_range(cfg, "textures.seam.shift_m", 0.0, 0.2)
    _check_range(cfg, "textures.photo_max_side", 64, 4096)
    _check_range(cfg, "textures.max_draws", 1)
    for key, hi in (("arm_angles_deg", 120.0), ("leg_angles_deg", 45.0)):
        angles = cfg["textures"]["candidates"][key]
        if (not isinstance(angles, list) or not angles
                or not all(isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a <= hi for a in angles)):
            raise ConfigError(f"config key 'textures.candidates.{key}' must be a non-empty list of angles "
                              f"in [0, {hi}], got {angles!r}")
    _check_dist(cfg, "render.camera.fov_deg", 5.0, 120.0)
    _check_dist(cfg, "render.camera.fill", 0.05, 1.0)
    _check_dist(cfg, "render.lights.count", 0, 16)
    for k in ("elevation_std_deg", "azimuth_std_deg", "roll_std_deg"):
        _check_range(cfg, f"render.camera.{k}", 0.0, 360.0)
    _check_range(cfg, "dataset.shards", 1)
    _check_range(cfg, "dataset.samples_per_shard", 1)
    _check_range(cfg, "dataset.max_retries", 0)
    _check_choice(cfg, "executor.kind", ("local", "ray"))
    _check_range(cfg, "executor.workers", 0)
    _check_range(cfg, "executor.cpus_per_worker", 0.01)
    _check_range(cfg, "executor.gpus_per_worker", 0.01)
    _check_range(cfg, "executor.shard_retries", 0)
    wpg = cfg["executor"]["workers_per_gpu"]
    if not isinstance(wpg, int) or isinstance(wpg, bool) or wpg < 0:
        raise ConfigError(f"config key 'executor.workers_per_gpu' must be a whole number >= 1 (or 0 = auto), got {wpg!r}")
    if wpg > 1 and cfg["executor"]["gpus_per_worker"] != 1:
        raise ConfigError(f"config keys 'executor.workers_per_gpu' = {wpg} and 'executor.gpus_per_worker' = "
                          f"{cfg['executor']['gpus_per_worker']!r} conflict: workers either share a GPU or use "
                          "several, not both (leave gpus_per_worker at 1)")
    _check_range(cfg, "executor.image_cache_mb", 0)
    _check_range(cfg, "executor.stall_timeout_s", 0)
    if cfg["executor"]["address"] is not None and not isinstance(cfg["executor"]["address"], str):
        raise ConfigError(f"config key 'executor.address' must be a string, got {cfg['executor']['address']!r}")
    if (cfg["executor"]["kind"] == "local" and cfg["render"]["device"] == "gpu"
            and cfg["executor"]["gpus_per_worker"] != int(cfg["executor"]["gpus_per_worker"])):
        raise ConfigError("config key 'executor.gpus_per_worker' must be a whole number with executor.kind=local")
    _check_range(cfg, "poses.fps", 1, 120)
    _check_range(cfg, "poses.min_pose_distance", 0.0)
    _check_range(cfg, "poses.n", 1)
    _check_range(cfg, "poses.validity.symmetry_tolerance", 0.0, 2.0)
    _check_range(cfg, "poses.validity.share_margin", 0.0)
    for k in cfg["poses"]["validity"]["radii"]:
        _check_range(cfg, f"poses.validity.radii.{k}", 0.0, 0.5)
    from synth.poses.lifting import validate_params as validate_lifting   # numpy only; no torch import
    validate_lifting(cfg["poses"]["lifting"])
    _check_choice(cfg, "train.backbone", ("resnet18", "resnet34", "resnet50", "alexnet"))
    _check_choice(cfg, "train.head", ("regression", "integral"))
    _check_range(cfg, "train.model.depth_bins", 2, 256)
    _check_range(cfg, "train.model.deconv_layers", 0, 5)
    _check_range(cfg, "train.model.deconv_channels", 1)
    _check_range(cfg, "train.model.integral_half_extent", 0.05, 10.0)
    _check_range(cfg, "train.augment.rotation_deg", 0.0, 180.0)
    _check_dist(cfg, "train.augment.scale", 0.1, 10.0)
    _check_range(cfg, "train.augment.colour_jitter", 0.0, 1.0)
    _check_range(cfg, "train.augment.occlusion_probability", 0.0, 1.0)
    _check_dist(cfg, "train.augment.occluder_size", 0.0, 1.0)
    _check_range(cfg, "train.augment.cutout_share", 0.0, 1.0)
    _check_choice(cfg, "train.device", ("auto", "cpu", "cuda"))
    _check_choice(cfg, "train.loss", ("l1", "l2"))
    _check_range(cfg, "train.batch_size", 1)
    _check_range(cfg, "train.epochs", 1)
    _check_range(cfg, "train.lr", 0.0)
    _check_range(cfg, "train.input_size", 32, 1024)
    _check_range(cfg, "train.val_fraction", 0.0, 0.9)
    _check_choice(cfg, "train.lr_schedule", ("constant", "cosine", "step"))
    _check_range(cfg, "train.lr_min_factor", 0.0, 1.0)
    _check_range(cfg, "train.lr_step_epochs", 1)
    _check_range(cfg, "train.lr_step_gamma", 0.0, 1.0)
    _check_range(cfg, "train.log_every_steps", 1)
    _check_range(cfg, "train.threads", 0)
    _check_choice(cfg, "train.adaptation.method", ("none", "dann", "mixer", "saa"))
    _check_range(cfg, "train.adaptation.jo2d_weight", 0.0)
    _check_range(cfg, "train.adaptation.classifier_hidden", 1)
    _check_range(cfg, "train.adaptation.mixer.warmup_steps", 0)
    _check_range(cfg, "train.adaptation.mixer.classifier_steps_per_extractor_step", 0)
    _check_range(cfg, "train.adaptation.mixer.confusion_weight", 0.0)
    _check_range(cfg, "train.adaptation.dann.weight", 0.0)
    _check_range(cfg, "train.adaptation.saa.layers", 1, 8)
    _check_range(cfg, "train.adaptation.saa.hidden", 1)
    _check_range(cfg, "train.adaptation.saa.confusion_weight", 0.0)
    _check_range(cfg, "train.adaptation.spa.steps", 1)
    _check_range(cfg, "train.adaptation.spa.weight", 0.0)
    _check_range(cfg, "train.adaptation.spa.batch_size", 1)
    for s in cfg["poses"]["sources"]:
        if s not in ("cmu", "lsp", "prior"):
            raise ConfigError(f"config key 'poses.sources': unknown source {s!r} (available: cmu, lsp, prior)")
    for s in cfg["poses"]["mix"]:
        _check_range(cfg, f"poses.mix.{s}", 0.0)
    for s in cfg["poses"]["prior"]["fit_mix"]:
        _check_range(cfg, f"poses.prior.fit_mix.{s}", 0.0)
    if sum(cfg["poses"]["mix"][s] for s in cfg["poses"]["sources"]) <= 0:
        raise ConfigError(f"config key 'poses.mix': the chosen sources {cfg['poses']['sources']} all have share 0")
    if sum(cfg["poses"]["prior"]["fit_mix"].values()) <= 0:
        raise ConfigError("config key 'poses.prior.fit_mix': no source with a positive weight")
    _check_range(cfg, "poses.prior.fit_fps", 1, 120)
    _check_range(cfg, "poses.prior.fit_min_pose_distance", 0.0)
    _check_range(cfg, "poses.prior.k", 1)
    _check_range(cfg, "poses.prior.kernel_sigma", 0.0, 1.0)
    _check_range(cfg, "poses.prior.mi_bins", 2)
    _check_range(cfg, "poses.prior.batch", 1)
    _check_range(cfg, "poses.prior.novelty_threshold", 0.0)


def data_dir(cfg: dict) -> Path:
    """The data directory: config `data_dir` when set, else $SYNTH_DATA, else ./data."""
    return Path(cfg.get("data_dir") or os.environ.get("SYNTH_DATA") or "data")


def cache_dir(cfg: dict) -> Path:
    """Derived caches: config `cache_dir` when set, else $SYNTH_CACHE, else ~/.cache/synth."""
    return Path(cfg.get("cache_dir") or os.environ.get("SYNTH_CACHE") or Path.home() / ".cache" / "synth")


def dump(cfg: dict, path: str | os.PathLike) -> None:
    """Write the resolved config beside an output (atomically)."""
    from synth.io_utils import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(copy.deepcopy(cfg), sort_keys=False))
