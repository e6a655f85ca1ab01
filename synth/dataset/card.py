"""The dataset card OUT/README.md: what a rendered dataset holds, how it was made, which input
sets it is derived from under which terms, and what that means for its use.

Written by `synth render` after dataset.json and again when the run ends (so the counts are
those of the shards complete then). The terms of each input set are quoted from the "License"
section of its SOURCE.md in the data directory (the data mirror's own record); where a set has
no SOURCE.md, from synth.assets.manifest.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import yaml

from synth.assets.manifest import SETS
from synth.config import Config
from synth.dataset.readers import WIDS_INDEX
from synth.dataset.shards import complete_shards, shard_name
from synth.io_utils import atomic_write_text

CARD = "README.md"
MAX_TERMS_CHARS = 700

# How each input set's terms bind a dataset derived from it (the SOURCE.md files say it in words;
# this is the summary the card's last section draws).
USE = {
    "cmu_mocap": ("research; may be part of commercial products, not resold", 1),
    "lsp": ("research use only (no licence stated; photos' copyright stays with their authors)", 3),
    "backgrounds": ("research use only (INRIA Person and LSP crops: no licence stated)", 3),
    "akhter_black_joint_limits": ("research use (no licence stated)", 3),
    "clothing": ("CC0 photos: any use; VITON-HD tops: CC BY-NC 4.0, non-commercial, with attribution", 2),
    "hdri": ("CC0: any use", 0),
    "makehuman_assets": ("CC0: any use", 0),
    "anny": ("Apache-2.0 (code), CC0 (MakeHuman assets): any use", 0),
}


def license_section(data_dir: Path, name: str) -> str | None:
    """The text of the 'License' / 'terms' section of data_dir/NAME/SOURCE.md, or None."""
    path = Path(data_dir) / name / "SOURCE.md"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    m = re.search(r"^##[^\n]*(licen[cs]e|terms)[^\n]*\n(.*?)(?=^## |\Z)", text, flags=re.I | re.M | re.S)
    if m is None:
        return None
    body = " ".join(line.strip() for line in m.group(2).strip().splitlines() if line.strip())
    return body if len(body) <= MAX_TERMS_CHARS else body[:MAX_TERMS_CHARS - 3] + "..."


def pose_sources(pose_file: str | None) -> list[str]:
    """The source tags (cmu, lsp, prior) of a pose file's poses."""
    if not pose_file or not Path(pose_file).is_file():
        return []
    try:
        with np.load(pose_file, allow_pickle=False) as z:
            return sorted({str(s) for s in z["source"]}) if "source" in z.files else []
    except (OSError, ValueError, KeyError):
        return []


def input_sets(cfg: Config) -> dict[str, str]:
    """The input sets a render of `cfg` draws from, each with what it is used for."""
    used: dict[str, str] = {}
    sources = pose_sources(cfg.dataset.pose_file) if cfg.dataset.pose_file else ["cmu"]
    if "cmu" in sources or "prior" in sources:
        used["cmu_mocap"] = "poses" if "prior" not in sources else "poses; the pose prior is fitted on MoCap"
    if "lsp" in sources or "prior" in sources:
        used["lsp"] = "3D poses lifted from LSP's 2D labels" + (
            " (and, by default, in the pose prior's fit)" if "prior" in sources else "")
        used["akhter_black_joint_limits"] = "pose validity checks of lifted and sampled poses"
    used["backgrounds"] = "background photos behind every sample"
    mode = cfg.render.clothing.mode
    if mode in ("photo", "library", "mesh"):
        used["clothing"] = {"photo": "garment photos transferred onto the body",
                            "library": "garment photos in the `synth dress` texture library",
                            "mesh": "fabric from the garment photos on the garment meshes"}[mode]
    if mode == "mesh":
        used["makehuman_assets"] = "garment, shoe, hat, hair, eyebrow and eyelash meshes fitted to the body"
    if cfg.render.lights.hdri_probability > 0:
        used["hdri"] = "environment lighting"
    if cfg.body.backend == "anny":
        used["anny"] = "the body model (the anny package)"
    return used


def render_card(out: Path, meta: dict, cfg: Config) -> str:
    out = Path(out)
    done = sorted(complete_shards(out))
    samples = 0
    for s in done:
        try:
            samples += int(json.loads((out / "shards" / f"{shard_name(s)}.json").read_text())["num_samples"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    W, H = meta["image_size"]
    planned = meta["num_shards"] * meta["samples_per_shard"]
    sw = meta.get("software") or {}
    rgb = meta.get("members", {}).get("rgb", "rgb.jpg")
    pose_text = (f"the pose file `{Path(cfg.dataset.pose_file).name}` (sha256 "
                 f"{(meta.get('inputs') or {}).get('pose_file_sha256', '?')[:12]}..., sources: "
                 f"{', '.join(pose_sources(cfg.dataset.pose_file)) or 'unknown'})" if cfg.dataset.pose_file else
                 f"CMU MoCap frames drawn on the fly (subjects {cfg.poses.subjects or 'all'}, {cfg.poses.fps:g} fps, "
                 f"thinned at {cfg.poses.min_pose_distance:g} m)")
    lines = [
        f"# {out.name}: synthetic images of people with exact 3D pose labels",
        "",
        "Rendered by synth (`synth render`); this card is generated and rewritten by each run.",
        "",
        "## What it holds",
        "",
        f"- {meta['num_shards']} shards x {meta['samples_per_shard']} samples = {planned} samples planned; "
        f"{len(done)} shards ({samples} samples) complete when this card was written.",
        f"- {W}x{H} images. Each sample (WebDataset key `sSSSSSS-IIIII`) has `{rgb}` (the composited RGB), "
        "`mask.png` (255 on the person), `parts.png` (8-bit body-part id, 0 = background; names in "
        "dataset.json), `depth.png` (16-bit camera z in millimetres, 0 = background) and `json` (15 joints in "
        "3D camera and world coordinates and in pixels, camera K / R / t, body shape, pose id, garments, "
        "background, lights, seed).",
        "- Layout and label conventions: schema `synth-pose/1` (dataset.json, shards/shard-NNNNNN.tar with a "
        f".json sidecar each). Random access: `{WIDS_INDEX}` (wids).",
        "",
        "Reading it:",
        "",
        "```python",
        "from synth.dataset import open_webdataset      # depth in mm (uint16), parts as ids (uint8)",
        f"for sample in open_webdataset(\"{out}\"):",
        "    rgb, depth_mm, parts, labels = sample[\"rgb\"], sample[\"depth_mm\"], sample[\"parts\"], sample[\"labels\"]",
        "```",
        "",
        f"Hugging Face: `datasets.load_dataset(\"webdataset\", data_files={{\"train\": \"{out}/shards/*.tar\"}})`.",
        "",
        "## How it was made",
        "",
        f"- seed {meta['seed']}; poses from {pose_text}.",
        f"- body: {cfg.body.backend}; clothing: {cfg.render.clothing.mode}; Cycles {cfg.render.samples} samples "
        f"on {cfg.render.device}{', denoised' if cfg.render.denoise else ''}; camera around the body's facing "
        + (f"(std azimuth/roll {cfg.render.camera.azimuth_std_deg:g}/{cfg.render.camera.roll_std_deg:g} degrees)"
           if cfg.render.framing.enabled else
           f"(std elevation/azimuth/roll {cfg.render.camera.elevation_std_deg:g}/{cfg.render.camera.azimuth_std_deg:g}/"
           f"{cfg.render.camera.roll_std_deg:g} degrees)")
        + (f"; framed like a photo (person {cfg.render.framing.person_size.low:g}-{cfg.render.framing.person_size.high:g}"
           f" of the image, camera {cfg.render.framing.camera_height_m.low:g}-{cfg.render.framing.camera_height_m.high:g}"
           f" m high, {cfg.render.framing.truncation_probability:.0%} cut by the border)" if cfg.render.framing.enabled
           else "") + f"; occluders in {cfg.render.occluders.probability:.0%} of the samples.",
        "- software: " + ", ".join(f"{k} {v}" for k, v in sw.items() if v) + ".",
        "- The full configuration is `config.yaml` beside this card (and `config` in dataset.json):",
        "",
        "<details><summary>configuration</summary>",
        "",
        "```yaml",
        yaml.safe_dump(meta.get("config", {}), sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
        "</details>",
        "",
        "## Input sets and their terms",
        "",
        "| input set | used for | terms |",
        "| --- | --- | --- |",
    ]
    used = input_sets(cfg)
    data_dir = cfg.paths().data
    for name, purpose in used.items():
        if name == "anny":
            terms = USE["anny"][0]
        else:
            terms = license_section(data_dir, name) or (SETS[name].license if name in SETS else "unknown")
        lines.append(f"| {name} | {purpose} | {terms.replace('|', '/')} |")
    worst = max((USE.get(n, ("", 3))[1] for n in used), default=0)
    lines += ["", "## What that means for use", ""]
    for name in used:
        lines.append(f"- {name}: {USE.get(name, ('see its terms above', 3))[0]}.")
    binding = ", ".join(n for n in used if USE.get(n, ("", 3))[1] == worst)
    verdict = {0: "No input restricts its use.",
               1: f"Free for research; it may be part of a commercial product but not resold as data ({binding}).",
               2: f"Non-commercial use only, with attribution ({binding}: CC BY-NC).",
               3: f"Research use only ({binding}: no licence stated, research use); publications should cite "
                  "the sources."}[worst]
    lines += ["", f"**In short: {verdict}** The rendered pixels and labels are derived from these inputs, so the "
                  "most restrictive of their terms applies to this dataset as a whole.", ""]
    return "\n".join(lines)


def write_card(out: Path, cfg: Config) -> Path:
    """Write OUT/README.md from OUT/dataset.json (the counts of the shards complete now)."""
    out = Path(out)
    meta = json.loads((out / "dataset.json").read_text())
    path = out / CARD
    atomic_write_text(path, render_card(out, meta, cfg))
    return path
