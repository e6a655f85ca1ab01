"""Checks of what a render reads and of what it wrote.

- verify_render_inputs: decode every file whose listing or digest dataset.json is about to
  record (backgrounds, garment photos, HDRIs, the pose file; with mesh clothing the MakeHuman
  assets), so that a truncated or broken file stops the run in one line before the output is tied
  to it. Measured on the 288 backgrounds, 248 garment photos and 12 HDRIs of the reference data:
  0.67 s of CPU; the 46 MakeHuman assets add 1.8 s when none has a cached binding, ~30 ms when all
  have (synth.body.clothing.wardrobe.check_assets). It runs only when dataset.json is written,
  not on every re-run.
- check_dataset (`synth check OUT`): every shard against its sidecar (size, sha256), readable as
  a tar, with exactly its sidecar's keys and each key's SPEC members, the labels valid JSON.
  One pass over each tar (hashing what tarfile reads): measured 4.3 s of CPU for 1.08 GB
  (4 shards of 2,000 samples, 5 members each), plus the time to read the files; `--quick`
  checks sizes only (milliseconds), and `synth render --verify` hashes without parsing
  (0.97 s of CPU for the same 1.08 GB).
"""
from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from synth.config import Config
from synth.dataset.shards import shard_name, sidecar_problem
from synth.io_utils import InputError

MEMBERS = ("mask.png", "parts.png", "depth.png", "json")   # and rgb.<render.image_format>


def verify_render_inputs(cfg: Config, inputs) -> None:
    """Decode the files a render of `cfg` fingerprints (see the module docstring); `inputs` is
    scene_sampler.render_inputs(cfg). InputError naming the first bad file."""
    from synth.image_files import verify_hdri, verify_image
    for path in inputs.backgrounds:
        verify_image(path, "background image")
    for photos in inputs.garments.values():
        for photo in photos:
            verify_image(photo.path, "garment photo")
    for path in inputs.hdris:
        verify_hdri(path)
    if inputs.mesh_assets is not None:
        from synth.body.clothing.wardrobe import check_assets
        check_assets(inputs.mesh_assets, cfg.paths().cache)
    pose_file = cfg.dataset.pose_file
    if pose_file:
        from synth.poses.posefile import load_poses
        load_poses(Path(pose_file))


class _HashingReader:
    """A file read forward only (tarfile's stream mode), hashing and counting what is read."""

    def __init__(self, f):
        self.f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def check_shard(shards_dir: Path, index: int, rgb_member: str, samples_per_shard: int,
                quick: bool = False) -> str | None:
    """None when shard `index` is whole; else what is wrong with it, in one line."""
    problem, sidecar = sidecar_problem(shards_dir, index)
    if problem is not None:
        return problem
    tar = shards_dir / f"{shard_name(index)}.tar"
    keys, sha = sidecar.get("keys"), sidecar.get("tar_sha256")
    if not isinstance(keys, list):
        return f"sidecar {tar.with_suffix('.json').name} unreadable"
    if quick:
        return None
    want = {rgb_member, *MEMBERS}
    found: dict[str, set[str]] = {}
    try:
        with open(tar, "rb") as f:
            reader = _HashingReader(f)
            with tarfile.open(fileobj=reader, mode="r|") as tf:
                for m in tf:
                    key, dot, member = m.name.partition(".")
                    if not m.isfile() or not dot or "/" in m.name:
                        return f"unexpected member {m.name!r}"
                    data = tf.extractfile(m).read()
                    if len(data) != m.size:
                        return f"member {m.name} is cut short"
                    if member == "json":
                        json.loads(data)
                    found.setdefault(key, set()).add(member)
            reader.drain()
    except (tarfile.TarError, EOFError, OSError) as e:
        return f"not a readable tar ({e.__class__.__name__}: {e})"
    except ValueError:
        return "a label (KEY.json) is not valid JSON"
    if sha is not None and reader.sha256.hexdigest() != sha:
        return "sha256 differs from the one its sidecar records"
    if sorted(found) != sorted(keys):
        return f"holds {len(found)} samples, its sidecar lists {len(keys)}"
    if len(keys) != samples_per_shard:
        return f"holds {len(keys)} samples, dataset.json says {samples_per_shard} per shard"
    for key in sorted(found):
        if found[key] != want:
            lacking = sorted(want - found[key]) or sorted(found[key] - want)
            return f"sample {key} has members {sorted(found[key])} (expected {sorted(want)}; see {lacking[0]})"
    return None


@dataclass
class DatasetCheck:
    out: Path
    num_shards: int
    bad: dict[int, str] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    legacy: list[int] = field(default_factory=list)     # sidecars without size/digest: checked as tars only

    @property
    def ok(self) -> bool:
        return not self.bad and not self.missing

    def lines(self) -> list[str]:
        shards = self.out / "shards"
        out = [f"{shards / shard_name(i)}.tar: {p}" for i, p in sorted(self.bad.items())]
        if self.missing:
            out.append(f"{shards}: {len(self.missing)} of {self.num_shards} shard(s) not rendered yet "
                       f"({_ranges(self.missing)})")
        good = self.num_shards - len(self.bad) - len(self.missing)
        out.append(f"{self.out}: {'OK' if self.ok else 'PROBLEMS'}: {good} of {self.num_shards} shard(s) "
                   f"complete and intact, {len(self.bad)} damaged, {len(self.missing)} missing"
                   + (f"; {len(self.legacy)} without a recorded size and sha256 (older sidecars)"
                      if self.legacy else ""))
        return out


def check_dataset(out: Path, quick: bool = False) -> DatasetCheck:
    """Check every shard of the dataset at `out` (see check_shard); InputError when dataset.json
    itself is missing or unreadable."""
    out = Path(out)
    path = out / "dataset.json"
    try:
        meta = json.loads(path.read_text())
        num, per = int(meta["num_shards"]), int(meta["samples_per_shard"])
        fmt = meta["config"]["render"]["image_format"]
    except FileNotFoundError:
        raise InputError(f"{path}: not found (not a `synth render` output)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: unreadable dataset description ({e.__class__.__name__})") from None
    report = DatasetCheck(out, num)
    shards_dir = out / "shards"
    for i in range(num):
        problem = check_shard(shards_dir, i, f"rgb.{fmt}", per, quick)
        if problem == "missing":
            report.missing.append(i)
        elif problem is not None:
            report.bad[i] = problem
        else:
            side = json.loads((shards_dir / f"{shard_name(i)}.json").read_text())
            if "tar_sha256" not in side:
                report.legacy.append(i)
    return report


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8' (at most 10 runs shown)."""
    runs: list[list[int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = [f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:10]]
    return ", ".join(text) + (f", ... ({len(runs) - 10} more runs)" if len(runs) > 10 else "")

