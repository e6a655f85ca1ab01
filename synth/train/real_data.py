"""Real photos for domain adaptation, 2D co-training and evaluation.

- `LspDataset`: an LSP-format folder (images/im%04d.jpg + joints.mat or joints_train.mat, read by
  synth.poses.lsp.load_lsp: LSP's joint order mapped to the SPEC order, 0-based pixels, the
  original LSP flag convention 0 = visible). Each item is the square crop around the 14 annotated
  joints (crop_box: 1.25 × their larger extent, as for synthetic samples), with the 2D joints in
  crop pixels; `visible_2d` is 1 for joints flagged visible that lie on the crop. LSP annotates
  occluded joints too (their positions are estimated by the annotators); the flag only says they
  are hidden.
- `PhotoFolderDataset`: a folder of unlabelled photos (.jpg/.jpeg/.png, sorted by name, in the
  folder or its images/ subfolder). Without labels the person is assumed to fill the photo (as in
  LSP, whose photos were cut around one person): the crop is the whole photo, centred and padded
  to a square (side = `margin` × the longer side). When the folder holds an LSP joints .mat, the
  crop is taken around the joints instead, as in LspDataset; the labels are still not returned.

Items follow the batch interface of synth.train.data.make_item with `domain` 1, `has_3d`
False, `target` zeros and `scale` 1.
"""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from synth.io_utils import InputError
from synth.poses.lsp import LSP_JOINTS, load_lsp
from synth.rng import Stream, stream
from synth.scene import JOINTS
from synth.train.augment import apply_affine, box_to_crop_matrix
from synth.train.data import crop_and_resize, crop_box, inside_crop, make_item

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
# The SPEC joints LSP annotates (all but the pelvis, which load_lsp derives from the hips).
LSP_LABELLED = np.array([j in LSP_JOINTS for j in JOINTS])


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def parse_image_range(text: str, n: int, where: str = "range") -> list[int]:
    """'a-b' (1-based image numbers, inclusive, as LSP names its images) -> 0-based indices."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(text))
    if not m:
        raise InputError(f"{where}: image range {text!r} must be 'first-last', e.g. 801-1000")
    a, b = int(m.group(1)), int(m.group(2))
    if not 1 <= a <= b <= n:
        raise InputError(f"{where}: image range {text!r} must lie within 1-{n}")
    return list(range(a - 1, b))


def split_real_spec(spec: str) -> tuple[Path, str | None]:
    """'FOLDER' or 'FOLDER:a-b' -> (folder, range text or None)."""
    m = re.fullmatch(r"(.*):(\d+\s*-\s*\d+)", str(spec))
    return (Path(m.group(1)), m.group(2)) if m else (Path(spec), None)


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(kept, held out) 0-based indices of n items: round(fraction × n) of them, drawn at random
    from `seed`, are held out; both lists are sorted."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} must be in [0, 1]")
    order = stream(seed, Stream.REAL_SPLIT).permutation(n)
    n_held = int(round(fraction * n))
    held = sorted(int(i) for i in order[:n_held])
    kept = sorted(int(i) for i in order[n_held:])
    return kept, held


class _PhotoSelection(Dataset):
    """What both real-photo datasets share: a selection (`indices`, 0-based) of a list of photos,
    the epoch that seeds augmentation, and occluders cut from other photos of the selection."""

    def _select(self, photos: list[Path], input_size: int, indices: list[int] | None, augment,
                noun: str) -> None:
        n = len(photos)
        self.indices = list(range(n)) if indices is None else [int(i) for i in indices]
        bad = [i for i in self.indices if not 0 <= i < n]
        if bad:
            raise InputError(f"{self.folder}: {noun} index {bad[0]} out of range (the folder has {n} {noun}s)")
        self._photos = photos
        self.input_size = int(input_size)
        self.joint_names = list(JOINTS)
        self.augment = augment
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _occluder_image(self, rng: np.random.Generator) -> np.ndarray:
        return read_rgb(self._photos[self.indices[int(rng.integers(len(self.indices)))]])


class LspDataset(_PhotoSelection):
    """Crops of an LSP-format folder with their 2D labels; `indices` (0-based) selects images.
    `augment` and `set_epoch` behave as in PoseShardDataset (occluders come from other photos
    of the selection)."""

    def __init__(self, folder: Path, input_size: int, indices: list[int] | None = None, augment=None,
                 mat_name: str | None = None, flag_means_visible: bool = False):
        self.folder = Path(folder)
        self.lsp = load_lsp(self.folder, mat_name, flag_means_visible)
        self._select(list(self.lsp.images), input_size, indices, augment, "image")
        self.root_index = JOINTS.index("pelvis")

    def image_path(self, i: int) -> Path:
        return self.lsp.images[self.indices[i]]

    def crop_rgb(self, i: int) -> np.ndarray:
        """The unaugmented uint8 RGB crop of item i (what the network sees, before normalising)."""
        k = self.indices[i]
        box = crop_box(self.lsp.joints_2d[k].astype(np.float64)[LSP_LABELLED])
        return crop_and_resize(read_rgb(self.lsp.images[k]), box, self.input_size)

    def __getitem__(self, i: int) -> dict:
        k = self.indices[i]
        rgb = read_rgb(self.lsp.images[k])
        j2d = self.lsp.joints_2d[k].astype(np.float64)
        box = crop_box(j2d[LSP_LABELLED])
        zeros = np.zeros((len(JOINTS), 3))
        if self.augment is None:
            crop = crop_and_resize(rgb, box, self.input_size)
            j2d_crop = apply_affine(box_to_crop_matrix(box, self.input_size), j2d)
        else:
            rng = self.augment.item_rng(self.epoch, i)
            crop, j2d_crop, _, _ = self.augment(rgb, box, self.input_size, j2d, zeros, rng, self._occluder_image)
        visible = self.lsp.visible[k].astype(np.float32) * inside_crop(j2d_crop, self.input_size)
        return make_item(crop, zeros, False, 1.0, j2d_crop, visible, 1, self.lsp.images[k].stem)


class PhotoFolderDataset(_PhotoSelection):
    """Unlabelled photos cropped around the person (see the module doc); `indices` (0-based,
    into the sorted photos) selects some."""

    def __init__(self, folder: Path, input_size: int, indices: list[int] | None = None, augment=None,
                 margin: float = 1.0):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: not a folder of photos")
        self.lsp = None
        if any((self.folder / m).is_file() for m in ("joints.mat", "joints_train.mat")):
            self.lsp = load_lsp(self.folder)
            self.photos = list(self.lsp.images)
        else:
            roots = [self.folder] + ([self.folder / "images"] if (self.folder / "images").is_dir() else [])
            self.photos = sorted(p for r in roots for p in r.iterdir()
                                 if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        if not self.photos:
            raise InputError(f"{self.folder}: no photos ({', '.join(PHOTO_SUFFIXES)})")
        self._select(self.photos, input_size, indices, augment, "photo")
        self.margin = float(margin)

    def box(self, k: int, rgb: np.ndarray) -> tuple[float, float, float]:
        if self.lsp is not None:
            return crop_box(self.lsp.joints_2d[k][LSP_LABELLED].astype(np.float64))
        h, w = rgb.shape[:2]
        # Pixel centres are whole numbers: the photo spans [-0.5, w - 0.5).
        return (w - 1) / 2.0, (h - 1) / 2.0, max(w, h) * self.margin

    def __getitem__(self, i: int) -> dict:
        k = self.indices[i]
        rgb = read_rgb(self.photos[k])
        box = self.box(k, rgb)
        j = len(JOINTS)
        if self.augment is None:
            crop = crop_and_resize(rgb, box, self.input_size)
        else:
            rng = self.augment.item_rng(self.epoch, i)
            crop, _, _, _ = self.augment(rgb, box, self.input_size, np.zeros((j, 2)), np.zeros((j, 3)), rng,
                                         self._occluder_image)
        return make_item(crop, np.zeros((j, 3)), False, 1.0, np.zeros((j, 2)), np.zeros(j), 1,
                         self.photos[k].stem)
