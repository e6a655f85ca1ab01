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
    _check_choice(cfg, "render.clothing.mode", ("photo", "flat"))
    _check_range(cfg, "render.samples", 1)
    _check_range(cfg, "render.jpeg_quality", 1, 100)
    _check_range(cfg, "render.lights.hdri_probability", 0.0, 1.0)
    _check_range(cfg, "render.clothing.flat_probability", 0.0, 1.0)
    _check_dist(cfg, "render.camera.fov_deg", 5.0, 120.0)
    _check_dist(cfg, "render.camera.fill", 0.05, 1.0)
    _check_dist(cfg, "render.lights.count", 0, 16)
    for k in ("elevation_std_deg", "azimuth_std_deg", "roll_std_deg"):
        _check_range(cfg, f"render.camera.{k}", 0.0, 360.0)
    _check_range(cfg, "dataset.shards", 1)
    _check_range(cfg, "dataset.samples_per_shard", 1)
    _check_range(cfg, "dataset.max_retries", 0)
    _check_range(cfg, "poses.fps", 1, 120)
    _check_range(cfg, "poses.min_pose_distance", 0.0)
    _check_range(cfg, "poses.n", 1)
    _check_choice(cfg, "train.backbone", ("resnet18", "resnet34", "resnet50"))
    _check_choice(cfg, "train.device", ("auto", "cpu", "cuda"))
    _check_choice(cfg, "train.loss", ("l1", "l2"))
    _check_range(cfg, "train.batch_size", 1)
    _check_range(cfg, "train.epochs", 1)
    _check_range(cfg, "train.lr", 0.0)
    _check_range(cfg, "train.input_size", 32, 1024)
    _check_range(cfg, "train.val_fraction", 0.0, 0.9)
    for s in cfg["poses"]["sources"]:
        if s not in ("cmu",):
            raise ConfigError(f"config key 'poses.sources': unknown source {s!r} (available: cmu)")


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
