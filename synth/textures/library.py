"""A library of dressed-body textures (`synth dress`), and drawing from it at render time.

Layout of a library folder:
    tex_00000.png       the (T, T, 3) RGB texture (renderer UV layout, row 0 = v 1)
    tex_00000.json      what it is made of: garment photo ids (paths relative to the data
                        directory), chosen candidate pose, deformation per candidate, contour
                        distances before/after warping, coverage, skin/hair/shoes, timings
    library.json        the index: entries, settings, summary figures (what renders fingerprint;
                        rewritten only when the entries change)
    library.stats.json  the last run's figures: entries written, set-up time, time per body,
                        rejected photos with reasons
    config.yaml         the resolved configuration

Entry i is drawn from its own rng (the TEXTURE_LIBRARY stream of (seed, i), synth.rng), so a
library is reproducible per seed and an interrupted run resumes: an entry whose PNG and JSON both exist is kept (the JSON is written last,
atomically, so it marks a complete entry).
"""
from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from synth.body import create_body_model
from synth.config import BodyConfig, Config, ConfigError, SkinConfig, TexturesConfig, save_config
from synth.image_files import cv2_imread
from synth.io_utils import InputError, atomic_write_bytes, atomic_write_json
from synth.resources import resolve_data_path
from synth.rng import Stream, stream
from synth.textures.dress import Dresser
from synth.textures.simple import load_skin_tones

log = logging.getLogger(__name__)
INDEX = "library.json"
STATS = "library.stats.json"    # counters of the last run: kept out of the index renders fingerprint
FORMAT = "synth-texture-library/1"
# The random streams entries are drawn from (2: synth.rng's TEXTURE_LIBRARY stream); a library
# begun with other streams is not resumed, its new entries would not be those of a fresh run.
RNG_STREAMS = 2


def entry_name(i: int) -> str:
    return f"tex_{i:05d}"


def entry_rng(seed: int, i: int) -> np.random.Generator:
    return stream(seed, Stream.TEXTURE_LIBRARY, i)


def make_dresser(textures: TexturesConfig, body: BodyConfig, skin: SkinConfig, data_dir: Path):
    """The Dresser for the `textures` section (an Anny body of `body`, the garment photos of
    `data_dir`, the skin tones of `skin`)."""
    if body.backend != "anny":
        raise ConfigError("config key 'body.backend' must be anny for `synth dress` (candidate poses use its rig)")
    tones, jitter = load_skin_tones(resolve_data_path(skin.tones, "render.skin.tones"))
    return Dresser(create_body_model(body), Path(data_dir), textures, tones, jitter)


def dresser_for(cfg: Config):
    """make_dresser with the sections of a whole configuration."""
    return make_dresser(cfg.textures, cfg.body, cfg.render.skin, cfg.paths().data)


def _settings(textures: TexturesConfig) -> dict:
    """The `textures:` settings that shape a library's content (not where a render finds it)."""
    return textures.model_dump(mode="json", exclude={"library"})


def _complete(out: Path, name: str) -> dict | None:
    png, js = out / f"{name}.png", out / f"{name}.json"
    if not (png.is_file() and js.is_file()):
        return None
    try:
        info = json.loads(js.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return info if info.get("name") == name else None


def write_library(cfg: Config, out: Path, n: int, progress: bool = True, dresser=None) -> dict:
    """Write n dressed-body textures to `out` (skipping complete entries); returns the index
    with this run's figures (`written`, `setup_s`, rejected photos) merged in. Reads
    `cfg.textures` and `cfg.seed` (the dresser, when not given, is `dresser_for(cfg)`) and
    records the whole configuration in out/config.yaml (the dressing page rebuilds the dresser
    from it).

    library.json (the index renders fingerprint) holds only what the entries are: a re-run with
    nothing to do leaves it untouched, byte for byte, so datasets rendered from the library can
    go on. This run's counters go to library.stats.json."""
    from synth.limits import MAX_LIBRARY_ENTRIES, check_count
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"--n {n}: a library needs at least one texture (n >= 1)")
    check_count("--n", n, MAX_LIBRARY_ENTRIES)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed, settings = cfg.seed, _settings(cfg.textures)
    index_path, stats_path = out / INDEX, out / STATS
    prev = _read_json(index_path) if index_path.is_file() else None
    if prev is not None:
        for key, value in (("seed", seed), ("textures", settings), ("rng_streams", RNG_STREAMS)):
            if prev.get(key) != value:
                raise InputError(f"{index_path}: the library was written with a different configuration "
                                 f"({key}); use another --out or the same settings")
    save_config(cfg, out / "config.yaml")
    todo = [i for i in range(n) if _complete(out, entry_name(i)) is None]
    t_setup = time.perf_counter()
    if todo and dresser is None:
        dresser = dresser_for(cfg)
    setup_s = time.perf_counter() - t_setup
    written = 0
    for i in tqdm(todo, desc="dress", unit="body", disable=not progress):
        name = entry_name(i)
        t0 = time.perf_counter()
        dressed = dresser.dress(entry_rng(seed, i))
        ok, png = cv2.imencode(".png", np.ascontiguousarray(dressed.texture[:, :, ::-1]))
        if not ok:   # pragma: no cover - cv2 encodes any uint8 image
            raise RuntimeError(f"{name}: PNG encoding failed")
        atomic_write_bytes(out / f"{name}.png", png.tobytes())
        info = {"name": name, "index": i, "seed": seed, **dressed.info,
                "total_s": round(time.perf_counter() - t0, 4)}
        atomic_write_json(out / f"{name}.json", info)
        written += 1
    entries = []
    for i in range(n):
        info = _complete(out, entry_name(i))
        if info is None:   # pragma: no cover - every entry was just written
            raise InputError(f"{out}: entry {entry_name(i)} is incomplete")
        entries.append(info)
    index = {"format": FORMAT, "n": n, "seed": seed, "rng_streams": RNG_STREAMS, "textures": settings,
             "entries": [{"name": e["name"], "png": f"{e['name']}.png", "json": f"{e['name']}.json",
                          "garments": [g["id"] for g in e["garments"]]} for e in entries],
             "summary": summarise(entries)}
    # how long the bodies took is a figure of the runs that made them, not of the entries: an
    # entry made again (the same texture) must leave the index as it was
    time_per_body = index["summary"].pop("time_per_body_s", None)
    old_stats = (_read_json(stats_path) if stats_path.is_file() else None) or {}
    if dresser is not None:
        stats = {"rejected_photos": dict(sorted(dresser.rejected.items())),
                 "photos_segmented": dresser.photos_segmented, "setup_s": round(setup_s, 3)}
        for pid, reason in sorted(dresser.rejected.items()):
            log.warning("rejected garment photo %s: %s", pid, reason)
    else:   # nothing new: keep what the last run that dressed bodies recorded
        stats = {"rejected_photos": old_stats.get("rejected_photos", {}),
                 "photos_segmented": old_stats.get("photos_segmented", 0),
                 "setup_s": old_stats.get("setup_s", 0.0)}
    stats["written"] = written
    stats["time_per_body_s"] = time_per_body
    if prev is None or _content(prev) != json.loads(json.dumps(index)):
        atomic_write_json(index_path, index)
    atomic_write_json(stats_path, stats)
    return {**index, **stats}


# run counters that older versions kept in library.json itself: an index that differs from the
# new one only by them describes the same entries and is left as it is
_LEGACY_COUNTERS = ("written", "setup_s", "rejected_photos", "photos_segmented")


def _content(index: dict) -> dict:
    content = {k: v for k, v in index.items() if k not in _LEGACY_COUNTERS}
    if isinstance(content.get("summary"), dict):
        content["summary"] = {k: v for k, v in content["summary"].items() if k != "time_per_body_s"}
    return content


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except ValueError:
        raise InputError(f"{path}: not valid JSON") from None
    return value if isinstance(value, dict) else None


def read_stats(folder: Path) -> dict:
    """library.stats.json (the last run's figures), or {} for a library without one."""
    path = Path(folder) / STATS
    return (_read_json(path) or {}) if path.is_file() else {}


def summarise(entries: list[dict]) -> dict:
    """Mean contour distances before/after, mean deformation per candidate, time per body."""
    if not entries:
        return {}
    dist = {r: {"before": [], "after": []} for r in ("upper", "lower")}
    defs: dict[str, list] = {}
    chosen: dict[str, int] = {}
    for e in entries:
        for g in e["garments"]:
            for k in ("before", "after"):
                dist[g["region"]][k].append(g["contour_distance_px"][k])
            for c, d in g["deformation"].items():
                defs.setdefault(c, []).append(d)
            chosen[g["candidate"]] = chosen.get(g["candidate"], 0) + 1
    times = [e["total_s"] for e in entries]
    return {"contour_distance_px": {r: {k: round(float(np.mean(v)), 3) for k, v in d.items() if v}
                                    for r, d in dist.items()},
            "mean_deformation": {c: round(float(np.mean(v)), 5) for c, v in sorted(defs.items())},
            "chosen_candidate": dict(sorted(chosen.items())),
            "time_per_body_s": {"mean": round(float(np.mean(times)), 4), "max": round(float(np.max(times)), 4)}}


class TextureLibrary:
    """Draws dressed-body textures from a `synth dress` folder (small LRU cache of decoded PNGs)."""

    def __init__(self, folder: Path, cache_size: int = 32):
        self.folder = Path(folder)
        index_path = self.folder / INDEX
        if not index_path.is_file():
            raise InputError(f"{index_path}: no texture library index; run `synth dress --out {self.folder}`")
        try:
            index = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{index_path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        if index.get("format") != FORMAT or not index.get("entries"):
            raise InputError(f"{index_path}: not a synth texture library (format {index.get('format')!r}) "
                             "or it has no entries")
        self.entries = index["entries"]
        for e in self.entries:
            for k in ("png", "json"):
                if not (self.folder / e[k]).is_file():
                    raise InputError(f"{self.folder / e[k]}: library entry file missing")
        self._cache: OrderedDict[str, tuple[np.ndarray, dict]] = OrderedDict()
        self.cache_size = cache_size

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, i: int) -> tuple[np.ndarray, dict]:
        e = self.entries[i]
        hit = self._cache.get(e["name"])
        if hit is not None:
            self._cache.move_to_end(e["name"])
            return hit
        path = self.folder / e["png"]
        img = cv2_imread(path, cv2.IMREAD_COLOR)
        if img is None or img.ndim != 3 or img.shape[0] != img.shape[1]:
            raise InputError(f"{path}: unreadable or not a square RGB texture")
        info = json.loads((self.folder / e["json"]).read_text())
        item = (np.ascontiguousarray(img[:, :, ::-1]), info)
        self._cache[e["name"]] = item
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return item

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """A random entry's texture and the labels it contributes (garments, skin tone)."""
        i = int(rng.integers(len(self.entries)))
        tex, info = self.load(i)
        garments = [{"id": g["id"], "region": g["region"], "kind": "library", "category": g["subcategory"],
                     "library_entry": info["name"], "candidate": g["candidate"]} for g in info["garments"]]
        return tex, {"garments": garments, "skin_tone": info["skin_tone"],
                     "texture_library": {"folder": self.folder.name, "entry": info["name"]}}
