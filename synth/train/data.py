"""Reading a rendered dataset (../shared/SPEC.md, "A rendered dataset") for training.

A map-style `torch.utils.data.Dataset` over the WebDataset tar shards. The shards are indexed
once with `tarfile` (headers only); samples are then read with `os.pread` at the recorded byte
offsets, so a file descriptor inherited by forked DataLoader workers is safe to share (pread has
no file position) and random access costs one read per member.

Each item is the RGB crop around the person (a square box around the 2D joints, with a margin,
resized to `input_size`), the 3D target (root-relative, normalised so that the skeleton's bone
lengths sum to `skeleton_length`, as in Chen et al. 2016) and the scale that undoes it.
"""
from __future__ import annotations

import json
import math
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from synth.config import TrainConfig
from synth.geometry import bone_index_pairs
from synth.io_utils import InputError
from synth.scene import BONES, JOINTS  # noqa: F401  (BONES: the bone order of bone_indices)
from synth.train.augment import (apply_affine, box_to_crop_matrix, crop_and_resize,  # noqa: F401  (re-exported)
                                 crop_matrix)

ROOT_JOINT = "pelvis"
# The crop's side is this many times the larger side of the joints' bounding box: joints sit
# inside the body, so hands, feet and hair reach beyond them.
CROP_MARGIN = 1.25
MIN_CROP_SIDE_PX = 8.0
# ImageNet statistics: the usual input normalisation for ResNets.
RGB_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
RGB_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SHARD_GLOB = "shard-*.tar"


def bone_indices(joint_names: list[str]) -> np.ndarray:
    """(14, 2) indices of `BONES` in the given joint order."""
    return bone_index_pairs(joint_names)


def normalise_pose(joints_3d: np.ndarray, joint_names: list[str] = JOINTS,
                   skeleton_length: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative joints scaled so that the bone lengths sum to `skeleton_length`.

    joints_3d: (..., J, 3) in metres. Returns (normalised (..., J, 3), scale (...,)) where
    `normalised * scale[..., None, None]` is the root-relative pose in metres again.
    """
    joints_3d = np.asarray(joints_3d, dtype=np.float64)
    bones = bone_indices(joint_names)
    root = joints_3d[..., joint_names.index(ROOT_JOINT):joint_names.index(ROOT_JOINT) + 1, :]
    rel = joints_3d - root
    total = np.linalg.norm(rel[..., bones[:, 1], :] - rel[..., bones[:, 0], :], axis=-1).sum(-1)
    if np.any(total <= 0):
        raise ValueError("skeleton with zero total bone length cannot be normalised")
    scale = total / skeleton_length
    return rel / scale[..., None, None], scale


def crop_box(joints_2d: np.ndarray, margin: float = CROP_MARGIN) -> tuple[float, float, float]:
    """Square box (centre x, centre y, side) around the 2D joints, in pixels."""
    lo, hi = joints_2d.min(0), joints_2d.max(0)
    cx, cy = (lo + hi) / 2.0
    side = max(float((hi - lo).max()) * margin, MIN_CROP_SIDE_PX)
    return float(cx), float(cy), side


def list_shards(data_dir: Path) -> list[Path]:
    """The shard tars of a rendered dataset, in name order; InputError names what is missing."""
    data_dir = Path(data_dir)
    if not (data_dir / "dataset.json").is_file():
        raise InputError(f"{data_dir}: no dataset.json (not a rendered dataset)")
    shards = sorted((data_dir / "shards").glob(SHARD_GLOB))
    if not shards:
        raise InputError(f"{data_dir / 'shards'}: no {SHARD_GLOB} shards")
    return shards


def read_dataset_meta(data_dir: Path) -> dict:
    path = Path(data_dir) / "dataset.json"
    if not path.is_file():
        raise InputError(f"{data_dir}: no dataset.json (not a rendered dataset)")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    names = meta.get("joints") if isinstance(meta, dict) else None
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(JOINTS):
        raise InputError(f"{path}: 'joints' must list the 15 SPEC joints, got {names!r}")
    return meta


def split_shards(shards: list[Path], val_fraction: float) -> tuple[list[Path], list[Path]]:
    """(train, val) by whole shards: the last ceil(val_fraction × n) shards are held out.

    With two or more shards at least one is held out and at least one is kept for training;
    a single shard is all training (val is empty).
    """
    n = len(shards)
    if n < 2:
        return list(shards), []
    # The small tolerance keeps e.g. 0.1 × 30 = 3.0000000000000004 at three shards.
    n_val = min(max(math.ceil(val_fraction * n - 1e-9), 1), n - 1)
    return list(shards[:n - n_val]), list(shards[n - n_val:])


@dataclass(frozen=True)
class SampleRef:
    """Where one sample's members lie in its shard: (byte offset, size) of each (mask, parts and
    depth None when the shard lacks them)."""
    shard: int
    key: str
    rgb: tuple[int, int]
    label: tuple[int, int]
    mask: tuple[int, int] | None = None
    parts: tuple[int, int] | None = None
    depth: tuple[int, int] | None = None


def index_shard(path: Path, shard_id: int) -> list[SampleRef]:
    """Scan a tar's headers; InputError naming the shard when it is corrupt or incomplete."""
    members: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        file_size = path.stat().st_size
        with tarfile.open(path, mode="r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                if m.offset_data + m.size > file_size:
                    raise InputError(f"{path}: truncated tar (member {m.name} runs past the end)")
                key, _, field = Path(m.name).name.partition(".")
                members.setdefault(key, {})[field] = (m.offset_data, m.size)
            end = tf.offset
        # tarfile stops quietly at a bad header after the first one; a sound archive ends
        # in zero blocks (the end-of-archive marker) right where reading stopped.
        with open(path, "rb") as f:
            f.seek(end)
            tail = f.read(512)
        if len(tail) < 512 or tail.count(0) != 512:
            raise InputError(f"{path}: corrupt or truncated tar (no valid header or end marker "
                             f"at byte {end})")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InputError(f"{path}: not a readable tar shard ({e.__class__.__name__}: {e})") from None
    refs = []
    for key in sorted(members):
        fields = members[key]
        rgb = fields.get("rgb.jpg") or fields.get("rgb.png")
        if rgb is None or "json" not in fields:
            missing = "rgb.jpg/rgb.png" if rgb is None else "json"
            raise InputError(f"{path}: sample '{key}' has no {missing} member")
        refs.append(SampleRef(shard_id, key, rgb, fields["json"], fields.get("mask.png"), fields.get("parts.png"),
                              fields.get("depth.png")))
    if not refs:
        raise InputError(f"{path}: shard holds no samples")
    return refs


class PoseShardDataset(Dataset):
    """Map-style dataset over whole shards of a rendered dataset.

    Items are dicts (`make_item`): `image` (3, S, S) float32 normalised RGB crop, `target`
    (J, 3) float32 normalised root-relative joints, `has_3d` True, `scale` () float32 metres per
    normalised unit, `joints_3d` (J, 3) camera-frame joints in metres (as labelled, not
    augmented), `joints_2d_crop` (J, 2) joints in crop pixels, `visible_2d` (J,) 1 for joints
    inside the crop that are in the rendered image (`joints_in_image`), `domain` 0 (synthetic) and `key` (str).

    With an `augment` (synth.train.augment.Augmenter) each item is augmented with parameters
    drawn from (augmenter seed, `epoch`, index): call `set_epoch` before each epoch's loader.
    Occluders are cut from another sample of the dataset, chosen by the same generator.
    With an `appearance` (synth.train.appearance.AppearanceAugmenter) the full rendered image is
    first re-composited over another background photo and its garments recoloured (from the
    sample's mask and part map), and the final crop blurred / noised / JPEG re-encoded; its draws
    come from (appearance seed, `epoch`, index).

    With `maps` (set it before an epoch's loader starts, as the epoch) items also carry the
    rendered label maps cut by the same crop: `depth_m` (S, S) float32 camera z in metres, 0 on
    the background, and `parts` (S, S) int64 part ids (dataset.json "parts"), both warped by
    nearest neighbour (no blending of depths across the silhouette or of ids). Occluders and the
    appearance augmentation paint only the RGB: they change no label. Off by default, so that
    others pay no decoding.
    """

    def __init__(self, data_dir: Path, shards: list[Path], input_size: int,
                 skeleton_length: float = 1.0, augment=None, appearance=None, maps: bool = False):
        self.data_dir = Path(data_dir)
        meta = read_dataset_meta(self.data_dir)
        self.joint_names: list[str] = [str(n) for n in meta["joints"]]
        self.root_index = self.joint_names.index(ROOT_JOINT)
        self.shards = [Path(s) for s in shards]
        self.input_size = int(input_size)
        self.skeleton_length = float(skeleton_length)
        self.samples: list[SampleRef] = []
        for i, shard in enumerate(self.shards):
            self.samples.extend(index_shard(shard, i))
        self._fds: dict[int, int] = {}
        self._fd_pid = os.getpid()
        self.augment = augment
        self.appearance = appearance
        self.epoch = 0
        self.maps = bool(maps)
        if self.maps:
            for ref in self.samples:
                if ref.depth is None or ref.parts is None:
                    missing = "depth.png" if ref.depth is None else "parts.png"
                    raise InputError(f"{self.shards[ref.shard]}: sample '{ref.key}' has no {missing} member")

    def __len__(self) -> int:
        return len(self.samples)

    def labels(self, index: int) -> dict:
        """The labels (KEY.json) of one sample, without decoding its images."""
        ref = self.samples[index]
        try:
            return json.loads(self._read(ref.shard, ref.label))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{self.shards[ref.shard]}: sample '{ref.key}' has invalid JSON labels ({e})") from None

    def mean_scale(self) -> float:
        """Mean metres per normalised unit (normalise_pose's scale) over the samples: the size of
        the training skeletons, which turns a normalised prediction into metres."""
        n = len(self.joint_names)
        scales = [normalise_pose(np.asarray(self.labels(i)["joints_3d_cam"], dtype=np.float64).reshape(n, 3),
                                 self.joint_names, self.skeleton_length)[1] for i in range(len(self))]
        return float(np.mean(scales))

    def load_layers(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask (H, W) uint8 255 = person, part ids (H, W) uint8) of one sample."""
        ref = self.samples[index]
        shard = self.shards[ref.shard]
        if ref.mask is None or ref.parts is None:
            raise InputError(f"{shard}: sample '{ref.key}' has no mask.png / parts.png member "
                             "(needed by train.appearance)")
        layers = []
        for span, what in ((ref.mask, "mask"), (ref.parts, "parts")):
            img = cv2.imdecode(np.frombuffer(self._read(ref.shard, span), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if img is None or img.ndim != 2:
                raise InputError(f"{shard}: sample '{ref.key}' has an undecodable 8-bit {what}.png")
            layers.append(img)
        return layers[0], layers[1]

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentations items get (set before creating the epoch's loader:
        worker processes copy the dataset when the loader's iterator starts)."""
        self.epoch = int(epoch)

    def __getstate__(self):
        # File descriptors do not travel to spawned workers; each process opens its own.
        state = self.__dict__.copy()
        state["_fds"] = {}
        return state

    def _read(self, shard: int, span: tuple[int, int]) -> bytes:
        if self._fd_pid != os.getpid():
            self._fds, self._fd_pid = {}, os.getpid()
        fd = self._fds.get(shard)
        if fd is None:
            fd = self._fds[shard] = os.open(self.shards[shard], os.O_RDONLY)
        data = os.pread(fd, span[1], span[0])
        if len(data) != span[1]:
            raise InputError(f"{self.shards[shard]}: short read (shard changed or truncated)")
        return data

    def load_raw(self, index: int) -> tuple[np.ndarray, dict]:
        """(RGB image (H, W, 3) uint8, labels dict) of one sample."""
        ref = self.samples[index]
        shard = self.shards[ref.shard]
        buf = np.frombuffer(self._read(ref.shard, ref.rgb), dtype=np.uint8)
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{shard}: sample '{ref.key}' has an undecodable RGB image")
        try:
            labels = json.loads(self._read(ref.shard, ref.label))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{shard}: sample '{ref.key}' has invalid JSON labels ({e})") from None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels

    def __getitem__(self, index: int) -> dict:
        ref = self.samples[index]
        rgb, labels = self.load_raw(index)
        n = len(self.joint_names)
        try:
            j3d = np.asarray(labels["joints_3d_cam"], dtype=np.float64).reshape(n, 3)
            j2d = np.asarray(labels["joints_2d"], dtype=np.float64).reshape(n, 2)
        except (KeyError, ValueError, TypeError) as e:
            raise InputError(f"{self.shards[ref.shard]}: sample '{ref.key}' lacks valid "
                             f"joints_3d_cam (15×3) / joints_2d (15×2) labels ({e})") from None
        if not (np.isfinite(j3d).all() and np.isfinite(j2d).all()):
            raise InputError(f"{self.shards[ref.shard]}: sample '{ref.key}' has non-finite joints")
        in_image = joints_in_image(labels, j2d, rgb.shape[1], rgb.shape[0])
        # the crop frames what the photo shows, as a real photo's crop frames its annotated joints:
        # a truncated person is cropped around the joints in the image (two at least)
        box = crop_box(j2d[in_image] if in_image.sum() >= 2 else j2d)
        target, scale = normalise_pose(j3d, self.joint_names, self.skeleton_length)
        app = None
        if self.appearance is not None:
            app = self.appearance.draw(self.appearance.item_rng(self.epoch, index))
            mask, parts = self.load_layers(index)
            rgb = self.appearance.apply_full(rgb, mask, parts, labels, app,
                                             where=f"{self.shards[ref.shard]}: sample '{ref.key}'")
        if self.augment is None:
            crop, m = crop_and_resize(rgb, box, self.input_size), box_to_crop_matrix(box, self.input_size)
            j2d_crop = apply_affine(m, j2d)
        else:
            rng = self.augment.item_rng(self.epoch, index)
            crop, j2d_crop, target, params = self.augment(rgb, box, self.input_size, j2d, target, rng,
                                                          self._occluder_image)
            m = crop_matrix(box, self.input_size, params.angle_deg, params.zoom)
        if app is not None:
            crop = self.appearance.apply_crop(crop, app)
        # 2D losses see a joint only where it is in the rendered image and, after augmentation,
        # on the crop: a joint beyond the image border is not a point to be trained toward (its
        # root-relative 3D label stays valid and keeps its weight in the 3D loss)
        item = make_item(crop, target, True, float(scale), j2d_crop,
                         inside_crop(j2d_crop, self.input_size) * in_image.astype(np.float32), 0, ref.key)
        item["joints_3d"] = torch.from_numpy(j3d.astype(np.float32))
        if self.maps:
            depth_mm, parts = self.load_maps(index)
            item["depth_m"] = torch.from_numpy(warp_nearest(depth_mm, m, self.input_size).astype(np.float32) / 1000.0)
            item["parts"] = torch.from_numpy(warp_nearest(parts, m, self.input_size).astype(np.int64))
        return item

    def load_maps(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(depth (H, W) uint16 millimetres, part ids (H, W) uint8) of one sample."""
        ref = self.samples[index]
        out = []
        for name, span, dtype in (("depth.png", ref.depth, np.uint16), ("parts.png", ref.parts, np.uint8)):
            img = cv2.imdecode(np.frombuffer(self._read(ref.shard, span), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if img is None or img.ndim != 2 or img.dtype != dtype:
                raise InputError(f"{self.shards[ref.shard]}: sample '{ref.key}' has an undecodable or "
                                 f"non-{np.dtype(dtype).name} single-channel {name}")
            out.append(img)
        return out[0], out[1]

    def _occluder_image(self, rng: np.random.Generator) -> np.ndarray:
        return self.load_raw(int(rng.integers(len(self))))[0]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def __del__(self):
        try:
            if self._fd_pid == os.getpid():
                self.close()
        except Exception:
            pass


def warp_nearest(label_map: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """A label map (H, W) through the 2×3 affine `m` (source px -> crop px) onto size×size, by
    nearest neighbour; outside the source is 0 (background)."""
    return cv2.warpAffine(label_map, m, (size, size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def joints_in_image(labels: dict, joints_2d: np.ndarray, width: int, height: int) -> np.ndarray:
    """(J,) bool: the sample's `joints_in_image` label, or (datasets rendered before it) whether
    each joint's rounded pixel lies on the width×height image."""
    flags = labels.get("joints_in_image")
    if flags is not None and len(flags) == len(joints_2d):
        return np.asarray(flags, dtype=bool)
    xy = np.rint(np.asarray(joints_2d, dtype=np.float64))
    return (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)


def inside_crop(joints_2d_crop: np.ndarray, size: int) -> np.ndarray:
    """(J,) 1.0 where a joint's pixel centre lies on the size×size crop, else 0.0."""
    j = np.asarray(joints_2d_crop)
    return ((j >= -0.5) & (j <= size - 0.5)).all(-1).astype(np.float32)


def make_item(crop: np.ndarray, target: np.ndarray, has_3d: bool, scale: float,
              joints_2d_crop: np.ndarray, visible_2d: np.ndarray, domain: int, key: str) -> dict:
    """One training item in the batch interface shared by synthetic and real datasets: `image`
    float32 (3, S, S) normalised, `target` float32 (J, 3) (zeros without 3D), `has_3d` bool,
    `scale` float32 (1 without 3D), `joints_2d_crop` float32 (J, 2) crop pixels (x right,
    y down), `visible_2d` float32 (J,), `domain` int64 (0 synthetic, 1 real), `key` str."""
    image = (crop.astype(np.float32) / 255.0 - RGB_MEAN) / RGB_STD
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
        "target": torch.from_numpy(np.asarray(target, dtype=np.float32)),
        "has_3d": torch.tensor(bool(has_3d)),
        "scale": torch.tensor(float(scale), dtype=torch.float32),
        "joints_2d_crop": torch.from_numpy(np.asarray(joints_2d_crop, dtype=np.float32)),
        "visible_2d": torch.from_numpy(np.asarray(visible_2d, dtype=np.float32)),
        "domain": torch.tensor(int(domain), dtype=torch.int64),
        "key": key,
    }


def train_val_datasets(data_dir: Path, train: TrainConfig, augment=None, appearance=None,
                       maps: bool = False) -> tuple[PoseShardDataset, PoseShardDataset | None]:
    """The training and held-out datasets for the `train` section; `augment` (an Augmenter, see
    synth.train.augment.build_augmenter) and `appearance` (an AppearanceAugmenter, see
    synth.train.appearance.build_appearance) apply to the training set only; `maps`: items carry
    the depth and part maps too (PoseShardDataset)."""
    shards = list_shards(data_dir)
    train_shards, val_shards = split_shards(shards, train.val_fraction)
    size, length = train.input_size, train.skeleton_length
    train_ds = PoseShardDataset(data_dir, train_shards, size, length, augment, appearance, maps)
    val_ds = PoseShardDataset(data_dir, val_shards, size, length, maps=maps) if val_shards else None
    return train_ds, val_ds
