"""Runtime data shipped inside the package (synth/data/), read through importlib.resources so that
an installed package (`pip install .`, not only a checkout) finds it.

- skin_tones.yaml       Monk-scale skin tones (render.skin.tones)
- cmu_mb_parts.yaml     Anny cmu_mb rig: the SPEC joint at each bone head, the part of each bone
- tailor_measurements.yaml  SPA's target segment lengths (train.adaptation.spa.target)
- upstream/*.txt        the reference mirror's file selections for `synth assets fetch`
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from synth.config import ConfigError

PACKAGE_DATA = "data"


def data_file(name: str):
    """The bundled file synth/data/NAME (an importlib.resources Traversable)."""
    return resources.files("synth").joinpath(PACKAGE_DATA, *Path(name).parts)


def read_data_text(name: str) -> str:
    return data_file(name).read_text(encoding="utf-8")


def resolve_data_path(value: str, key: str) -> Path:
    """A configuration value naming a data file: an existing path (absolute, or relative to the
    working directory) as it is, else the bundled file of that name (its last component, so the
    older 'assets/skin_tones.yaml' and 'train/tailor_measurements.yaml' still work). ConfigError
    naming the key when neither exists."""
    p = Path(value).expanduser()
    if p.is_file():
        return p
    bundled = data_file(Path(value).name)
    if bundled.is_file():
        return Path(str(bundled))
    raise ConfigError(f"config key '{key}' = {value!r}: no such file (nor a file of that name in synth/data)")
