"""The SPEC dataset layout: dataset.json, WebDataset tar shards written whole or not at all,
and per-shard sidecars.

A shard is written under a temporary name in shards/ and renamed when complete, so a reader
(or a re-run) only ever sees complete shards; the sidecar follows the tar.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from synth.config import Config
from synth.dataset.identity import dataset_identity, software_difference
from synth.dataset.locking import ShardLock, acquire, any_lock_held, host_name, remove_stale_partials
from synth.io_utils import InputError, atomic_write_json, file_digest, with_filename
from synth.scene import JOINTS, PARTS

SCHEMA = "synth-pose/1"


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def sample_key(shard: int, index: int) -> str:
    return f"s{shard:06d}-{index:05d}"


def dataset_meta(cfg: Config) -> dict:
    """dataset.json's content (../shared/SPEC.md): the layout, counts, seed and the resolved
    configuration (all of it but `executor`, which is no part of a dataset)."""
    return {
        "schema": SCHEMA,
        "joints": list(JOINTS),
        "parts": {"0": "background", **{str(i + 1): p for i, p in enumerate(PARTS)}},
        "image_size": [cfg.render.width, cfg.render.height],
        "num_shards": cfg.dataset.shards,
        "samples_per_shard": cfg.dataset.samples_per_shard,
        "seed": cfg.seed,
        "members": {"rgb": f"rgb.{cfg.render.image_format}", "mask": "mask.png", "parts": "parts.png",
                    "depth": "depth.png (uint16 mm)", "labels": "json"},
        "config": cfg.model_dump(mode="json", exclude={"executor"}),
    }


def write_or_check_meta(out: Path, cfg: Config, inputs: dict | None = None, software: dict | None = None,
                        allow_version_mismatch: bool = False,
                        before_write: Callable[[], None] | None = None) -> dict:
    """dataset.json is written first; a re-run must use the same identity keys, inputs and
    software (synth.dataset.identity).

    `inputs` (fingerprints of the data the configuration points at) and `software` (versions)
    are recorded beside the configuration. Only the identity keys are compared, so a node that
    mounts the same data at another path, or a re-run with other `train.*` or `executor.*`
    settings, may add to the output; `allow_version_mismatch` lets other software versions add to it.
    An output without a complete shard and without a live writer holds nothing made from its
    recorded inputs or software, so it takes the new ones (saying so) instead of refusing them: a
    run that stopped on a bad input file can be repeated once the file (or the code) is fixed.
    `before_write` runs just before dataset.json is (re)written, e.g. to check the input files it
    fingerprints. Callers that may race hold `dataset_lock(out)`."""
    meta = dataset_meta(cfg)
    if inputs is not None:
        meta["inputs"] = inputs
    if software is not None:
        meta["software"] = software
    path = out / "dataset.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{path}: not valid JSON") from None
        theirs = dataset_identity(old.get("config") or {})
        mine = dataset_identity(meta["config"])
        if theirs != mine:
            diff = _first_difference(theirs, mine)
            raise InputError(f"{path}: this output was made with a different configuration ({diff}); "
                             "use another --out or the same configuration")
        software_diff = (software_difference(old.get("software"), software)
                         if software is not None and not allow_version_mismatch else None)
        inputs_diff = (_first_difference(old.get("inputs"), meta["inputs"], "inputs.")
                       if inputs is not None and old.get("inputs") != meta["inputs"] else None)
        if software_diff is None and inputs_diff is None:
            return old
        done = complete_shards(out)
        writer = any_lock_held(out / "shards")
        if done or writer is not None:
            why = f"{len(done)} complete shard(s)" if done else f"a shard being written by {writer.describe()}"
            if software_diff is not None:
                raise InputError(f"{path}: this output was made with other software ({software_diff}); it has "
                                 f"{why}: use the same versions, another --out, or --allow-version-mismatch")
            raise InputError(f"{path}: this output was made from other input files ({inputs_diff}; it has {why}); "
                             "use another --out or the same data")
        new = "; ".join(d for d in (software_diff, inputs_diff) if d is not None)
        what = " and ".join(w for w, d in (("software", software_diff), ("input files", inputs_diff)) if d is not None)
        warnings.warn(f"{path}: no shard was complete, so this output now records the new {what} ({new})",
                      stacklevel=2)
    if before_write is not None:
        before_write()
    atomic_write_json(path, meta)
    return meta


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')}: {a!r} -> {b!r}"


# The label images (mask, parts, depth) are large flat areas: zlib's run-length strategy at level 1
# makes them ~25 % smaller than the default strategy and ~5 % faster to write (measured on
# 256x256 renders: mask 1.6 -> 0.9 KiB, parts 1.9 -> 1.3 KiB, depth 7.2 -> 5.9 KiB; decoded
# arrays identical, tests/test_pipeline.py).
_LABEL_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def encode_png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr, _LABEL_PNG_PARAMS)
    assert ok
    return buf.tobytes()


def encode_rgb(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt == "jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buf.tobytes()


class _DigestingFile:
    """The tar's file object: writes through to `f`, counting and hashing the bytes, so the
    sidecar can record the shard's size and sha256 without reading the tar again."""

    def __init__(self, f):
        self.f = f
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.f.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size


class ShardWriter:
    """Collects one shard's samples in a temporary tar, renamed to shard-NNNNNN.tar on commit.

    The temporary name carries this writer's host and pid (`.shard-N.tar.HOST.PID.partial`), so
    writers of the same shard never touch each other's file; with a `claim` (the shard's lock,
    see claim_shard) the partials of writers that are gone are removed, and each sample is a
    heartbeat. `record` (after commit) is what the sidecar keeps to tell a whole shard: its
    size and sha256, computed while writing."""

    def __init__(self, shards_dir: Path, index: int, claim: "ShardClaim | None" = None):
        self.final = shards_dir / f"{shard_name(index)}.tar"
        self.tmp = shards_dir / f".{shard_name(index)}.tar.{host_name()}.{os.getpid()}.partial"
        self.claim = claim
        shards_dir.mkdir(parents=True, exist_ok=True)
        # a killed run's leftovers of this shard (hidden, never taken for complete); without the
        # lock only this host's dead writers' are known to be leftovers
        remove_stale_partials(shards_dir, shard_name(index), self.tmp,
                              locked=claim is not None and claim.lock.locked)
        try:
            self._f = open(self.tmp, "wb")
        except OSError as e:
            raise with_filename(e, self.tmp) from e
        self._out = _DigestingFile(self._f)
        self._tar = tarfile.open(fileobj=self._out, mode="w", format=tarfile.USTAR_FORMAT)
        self.keys: list[str] = []
        self.record: dict = {}

    def add(self, key: str, members: dict[str, bytes]) -> None:
        try:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                info.mtime = 0          # byte-identical shards for identical content
                info.mode = 0o644
                self._tar.addfile(info, io.BytesIO(data))
        except OSError as e:     # a full disk, a lost mount: name the file
            raise with_filename(e, self.tmp) from e
        self.keys.append(key)
        if self.claim is not None:
            self.claim.lock.heartbeat()

    def commit(self) -> Path:
        try:
            self._tar.close()
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
        except OSError as e:
            raise with_filename(e, self.tmp) from e
        self.record = {"tar_bytes": self._out.size, "tar_sha256": self._out.sha256.hexdigest()}
        if self.claim is not None and self.claim.before_commit is not None:
            self.claim.before_commit()      # e.g. dataset.json still records this run's inputs
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        """Drop the temporary tar. Closes the file without finishing the archive: after a full
        disk, writing the tar's end blocks would only fail again and hide the first error."""
        try:
            self._f.close()
        except OSError:
            pass
        self.tmp.unlink(missing_ok=True)


@dataclass
class ShardClaim:
    """A shard this process may write: its lock is held. `sidecar` is set when another writer
    completed the shard while this one waited (nothing left to do)."""
    lock: ShardLock
    sidecar: dict | None = None
    before_commit: Callable[[], None] | None = None


def shard_lock(shards_dir: Path, index: int) -> ShardLock:
    return ShardLock(shards_dir / f".{shard_name(index)}.lock")


@contextmanager
def claim_shard(shards_dir: Path, index: int, wait: bool = True, stall_timeout_s: float = 0.0,
                before_commit: Callable[[], None] | None = None) -> Iterator[ShardClaim]:
    """Hold shard `index`'s lock for the block (see synth.dataset.locking): when another live
    writer holds it, raise ShardBusy (not `wait`) or wait for it (ShardStalled when it makes no
    progress for `stall_timeout_s`). A shard found complete once the lock is ours was finished by
    that other writer: the claim carries its sidecar, marked `completed_by_another_writer`."""
    shards_dir.mkdir(parents=True, exist_ok=True)
    lock = shard_lock(shards_dir, index)
    acquire(lock, wait, stall_timeout_s, shard_name(index))
    try:
        claim = ShardClaim(lock, before_commit=before_commit)
        tar = shards_dir / f"{shard_name(index)}.tar"
        if tar.is_file() and shard_problem(shards_dir, index) is None:
            claim.sidecar = {**read_sidecar(shards_dir, index), "completed_by_another_writer": True}
        yield claim
    finally:
        lock.release()


def write_sidecar(shards_dir: Path, index: int, sidecar: dict) -> None:
    atomic_write_json(shards_dir / f"{shard_name(index)}.json", sidecar)


def read_sidecar(shards_dir: Path, index: int) -> dict:
    return json.loads((shards_dir / f"{shard_name(index)}.json").read_text())


def tar_digest(path: Path) -> str:
    return file_digest(path, "sha256")


def sidecar_problem(shards_dir: Path, index: int) -> tuple[str | None, dict | None]:
    """(what is wrong with shard `index` that its files alone show, in a few words, or None; its
    sidecar): the tar or sidecar missing, the sidecar unreadable, the tar's size not the one the
    sidecar recorded (sidecars of older versions record none)."""
    tar = shards_dir / f"{shard_name(index)}.tar"
    side = tar.with_suffix(".json")
    if not tar.is_file():
        return "missing", None
    if not side.is_file():
        return "no sidecar (its writer stopped before the end)", None
    try:
        sidecar = json.loads(side.read_text())
    except (OSError, ValueError):
        sidecar = None
    if not isinstance(sidecar, dict):
        return f"sidecar {side.name} unreadable", None
    size = sidecar.get("tar_bytes")
    if size is not None:
        have = tar.stat().st_size
        if have != size:
            return f"{have} bytes, its sidecar records {size}", sidecar
    return None, sidecar


def shard_problem(shards_dir: Path, index: int, digest: bool = False) -> str | None:
    """None when shard `index` is complete: its tar and sidecar are there and the tar has the
    size (and, with `digest`, the sha256) the sidecar recorded; else what is wrong, in a few
    words. Sidecars of older versions record neither: their shards count as complete."""
    problem, sidecar = sidecar_problem(shards_dir, index)
    if problem is not None:
        return problem
    sha = sidecar.get("tar_sha256")
    if digest and sha is not None and tar_digest(shards_dir / f"{shard_name(index)}.tar") != sha:
        return "sha256 differs from the one its sidecar records"
    return None


def inspect_shards(out: Path, indices, digest: bool = False) -> tuple[set[int], dict[int, str]]:
    """(complete shards, {damaged shard: what is wrong}) among `indices`: a shard whose tar and
    sidecar are there but disagree (size; sha256 with `digest`) is damaged; one without its tar
    or sidecar is simply not done."""
    shards_dir = out / "shards"
    complete, damaged = set(), {}
    present = {p.name for p in shards_dir.glob("shard-*")} if shards_dir.is_dir() else set()
    for i in indices:
        if f"{shard_name(i)}.tar" not in present:
            continue
        problem = shard_problem(shards_dir, i, digest)
        if problem is None:
            complete.add(i)
        elif f"{shard_name(i)}.json" in present:
            damaged[i] = problem
    return complete, damaged


def discard_damaged(out: Path, index: int) -> bool:
    """Remove a damaged shard (sidecar first, then the tar) so it is rendered again like a
    missing one; False, leaving it, when another writer holds it (it is being rendered)."""
    shards_dir = out / "shards"
    lock = shard_lock(shards_dir, index)
    if not lock.try_acquire():
        return False
    try:
        (shards_dir / f"{shard_name(index)}.json").unlink(missing_ok=True)
        (shards_dir / f"{shard_name(index)}.tar").unlink(missing_ok=True)
    finally:
        lock.release()
    return True


def complete_shards(out: Path) -> set[int]:
    """Shards whose tar and sidecar are both in place and agree on the tar's size. The sidecar is
    written after the tar is renamed, so a run killed between the two leaves a tar without
    sidecar: that shard is rendered again (to the same bytes) rather than left without its
    sidecar for good."""
    indices = []
    for p in (out / "shards").glob("shard-*.tar"):
        try:
            indices.append(int(p.stem.split("-")[1]))
        except (IndexError, ValueError):
            continue
    return inspect_shards(out, indices)[0]


def check_meta_unchanged(out: Path, inputs: dict | None, software: dict | None = None) -> None:
    """InputError when OUT/dataset.json now records other input files than `inputs`, or other
    software versions than `software` when given (another run, with other data or software, took
    the output over while this one rendered). What dataset.json does not record (outputs made by
    hand or by older versions) is not checked."""
    path = out / "dataset.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable while committing a shard ({e.__class__.__name__})") from None
    recorded = meta.get("inputs")
    if recorded is not None and inputs is not None and recorded != inputs:
        diff = _first_difference(recorded, inputs, "inputs.")
        raise InputError(f"{path}: another run took this output over with other input files ({diff}); "
                         "this run stops without adding its shard")
    if software is not None and meta.get("software") is not None:
        diff = software_difference(meta["software"], software)
        if diff is not None:
            raise InputError(f"{path}: another run took this output over with other software ({diff}); "
                             "this run stops without adding its shard")


@contextmanager
def dataset_lock(out: Path) -> Iterator[None]:
    """Hold OUT/.dataset.lock (synth.dataset.locking) for the block: dataset.json's check and
    write, and the index and card written from the complete shards, one run at a time. Waits
    for another holder however long it takes (these blocks are short)."""
    out.mkdir(parents=True, exist_ok=True)
    lock = ShardLock(out / ".dataset.lock")
    acquire(lock, True, 0.0, f"{out}/dataset.json")
    try:
        yield
    finally:
        lock.release()
