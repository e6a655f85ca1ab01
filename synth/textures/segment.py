"""Garment segmentation of product photos: which photos there are, and each garment's mask.

The photos show one garment lying flat on a plain surface (a sheet, a floor, a board) that is
rarely white, or an in-shop photo on light grey. The surface is what the image border shows, so
the border is the background model:

1. a colour-distance prior: each pixel's CIELAB distance to the nearest of a few border colour
   clusters (k-means on the border strip), scaled by how much the border itself varies;
2. GrabCut initialised from that prior: the border strip (and pixels of almost exactly a border
   colour) is sure background, pixels close to the border colours are probable background, pixels
   far from them (and the photo's centre) are probable foreground, pixels very far from them
   inside the central region are sure foreground;
3. morphological opening/closing, hole filling, and the largest connected component;
4. plausibility checks, each with a reason string: a garment cut by the frame (its colour shows
   on part of the border while most of the photo's centre has it too), a mask that runs along
   the border strip, covers too little or too much of the image, falls apart into several big
   blobs, or hardly differs in colour from the surface is rejected.

Pure numpy/OpenCV; no bpy.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from synth.image_files import cv2_imread, open_image
from synth.io_utils import InputError

CATEGORIES = ("upper", "lower")
MANIFEST_COLUMNS = ("file", "mask", "category", "subcategory")

# Plausibility limits (shares of the image area / of the image perimeter).
MIN_AREA_SHARE = 0.15       # a garment "filling most of the frame" never covers less (accepted: 22-68%)
MAX_AREA_SHARE = 0.92       # more than this is the surface taken for the garment
MAX_BORDER_SHARE = 0.10     # garment pixels on the outermost image rows/columns
BLOB_SHARE = 0.15           # a second component this large (vs. the largest) is "another blob"
MIN_CONTRAST = 1.5          # median colour distance of the mask to the border colours (border spreads)
SURE_BG_PRIOR = 0.15        # colour distance (border spreads) below which a pixel is sure background


@dataclass
class GarmentPhoto:
    id: str                       # path relative to the data directory given to list_garment_photos
    path: Path
    category: str                 # upper | lower
    subcategory: str = ""         # t-shirt, pants, ... (the photo's folder)
    mask_path: Path | None = None  # a given garment mask (255 = garment), when the data has one


@dataclass
class Segmentation:
    image: np.ndarray             # H x W x 3 uint8 RGB, downscaled to max_side
    mask: np.ndarray              # H x W bool, the garment (largest component, holes filled)
    ok: bool
    reason: str = ""              # "" when ok, else why the mask is implausible
    area_share: float = 0.0       # mask pixels / image pixels
    border_share: float = 0.0     # share of the image perimeter where the mask reaches the border strip
    n_blobs: int = 0              # components at least BLOB_SHARE of the largest (before keeping one)
    contrast: float = 0.0         # median colour distance of the garment's pixels to the border colours
    prior: np.ndarray | None = field(default=None, repr=False)   # colour distance to the border (float32)


def _clothing_root(data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    if (data_dir / "clothing" / "manifest.csv").is_file() or (data_dir / "clothing").is_dir():
        return data_dir / "clothing"
    return data_dir


def list_garment_photos(data_dir: Path) -> list[GarmentPhoto]:
    """Every garment photo of the clothing mirror, from its manifest.csv (or, without one, from
    its `<set>/{upper,lower}/<subcategory>/*.jpg` folders).

    `data_dir` is the data directory holding `clothing/` (ids are then `clothing/...`, as the rest
    of the project names assets) or the clothing folder itself (ids relative to it)."""
    data_dir = Path(data_dir)
    root = _clothing_root(data_dir)
    if not root.is_dir():
        raise InputError(f"{root}: clothing folder not found")
    manifest = root / "manifest.csv"
    photos: list[GarmentPhoto] = []
    if manifest.is_file():
        with open(manifest, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{manifest}: missing column(s) {', '.join(missing)}")
            for lineno, row in enumerate(reader, start=2):
                cat = row["category"].strip()
                if cat not in CATEGORIES:
                    raise InputError(f"{manifest}:{lineno}: category {cat!r} is not upper or lower")
                path = root / row["file"].strip()
                if not path.is_file():
                    raise InputError(f"{manifest}:{lineno}: photo {path} does not exist")
                # The folders name the category too; they must agree with the manifest.
                parts = Path(row["file"]).parts
                folder_cat = next((p for p in parts if p in CATEGORIES), None)
                if folder_cat is not None and folder_cat != cat:
                    raise InputError(f"{manifest}:{lineno}: category {cat} contradicts folder {folder_cat}")
                mask = row["mask"].strip()
                mask_path = root / mask if mask else None
                if mask_path is not None and not mask_path.is_file():
                    raise InputError(f"{manifest}:{lineno}: mask {mask_path} does not exist")
                photos.append(GarmentPhoto(str(path.relative_to(data_dir)), path, cat,
                                           row["subcategory"].strip(), mask_path))
    else:
        for path in sorted(root.glob("*/*/*/*.jpg")):
            cat, sub = path.parent.parent.name, path.parent.name
            if cat in CATEGORIES:
                photos.append(GarmentPhoto(str(path.relative_to(data_dir)), path, cat, sub, None))
    if not photos:
        raise InputError(f"{root}: no garment photos found")
    return photos


def load_photo(path: Path, max_side: int = 512) -> np.ndarray:
    """RGB uint8, downscaled (area filter) so the long side is at most max_side."""
    open_image(path, "garment photo").close()      # size limits (a 1x1 photo cannot be segmented)
    bgr = cv2_imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: unreadable garment photo")
    h, w = bgr.shape[:2]
    s = max_side / max(h, w)
    if s < 1.0:
        bgr = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load_given_mask(photo: GarmentPhoto, shape: tuple[int, int]) -> np.ndarray | None:
    """The data's own garment mask (bool, resized to shape = (H, W)), or None when it has none."""
    if photo.mask_path is None:
        return None
    m = cv2_imread(photo.mask_path, cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise InputError(f"{photo.mask_path}: unreadable garment mask")
    if m.shape != tuple(shape):
        m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return m > 127


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _border_ring(h: int, w: int, width: int) -> np.ndarray:
    ring = np.zeros((h, w), bool)
    ring[:width] = ring[-width:] = True
    ring[:, :width] = ring[:, -width:] = True
    return ring


def _border_model(image: np.ndarray, strip: int, clusters: int = 4):
    """k-means colour clusters of the border strip (CIELAB). Returns (lab image, ring mask,
    cluster label per ring pixel, cluster centres, the border's spread)."""
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (5, 5), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    h, w = lab.shape[:2]
    ring = _border_ring(h, w, strip)
    border = lab[ring]
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    # Fixed initial labels (not cv2's random seeding) keep the segmentation deterministic.
    labels0 = (np.arange(len(border)) * clusters // len(border)).astype(np.int32).reshape(-1, 1)
    _, labels, centres = cv2.kmeans(border, clusters, labels0, crit, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    labels = labels.ravel()
    # The border's spread: a robust within-cluster distance; floor it so a perfectly flat
    # background does not turn JPEG noise into "foreground".
    within = np.linalg.norm(border - centres[labels], axis=1)
    spread = max(float(np.percentile(within, 90)), 4.0)
    return lab, ring, labels, centres, spread


def border_colour_distance(image: np.ndarray, strip: int, clusters: int = 4) -> np.ndarray:
    """Per pixel, the CIELAB distance to the nearest border colour cluster, in units of the
    border's own spread (so a textured sheet and a smooth board get comparable scales)."""
    lab, _, _, centres, spread = _border_model(image, strip, clusters)
    h, w = lab.shape[:2]
    d = np.min(np.linalg.norm(lab.reshape(-1, 1, 3) - centres[None], axis=2), axis=1).reshape(h, w)
    return (d / spread).astype(np.float32)


def garment_colour_on_border(image: np.ndarray, strip: int, clusters: int = 4) -> float:
    """Share of the border strip whose colour is the garment's, or 0.

    A garment cut by the frame puts its own colour into the border model, so the colour prior
    then calls the garment background and no border-touch test on the mask can see it. Its trace:
    a *minor* border colour cluster (under 35% of the strip) that most of the photo's centre (where
    the garment lies) also has (over 30% of the central 40% x 40%)."""
    lab, _, labels, centres, spread = _border_model(image, strip, clusters)
    h, w = lab.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    centre = lab[(np.abs(xx - w / 2) < 0.2 * w) & (np.abs(yy - h / 2) < 0.2 * h)]
    worst = 0.0
    for k in range(clusters):
        share = float((labels == k).mean())
        near = float((np.linalg.norm(centre - centres[k], axis=1) < spread).mean())
        if share < 0.35 and near > 0.3:
            worst = max(worst, share)
    return worst


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = mask.astype(np.uint8)
    flood = pad.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask | holes


def segment_garment(photo: GarmentPhoto | Path, max_side: int = 512, grabcut_iters: int = 4,
                    work_side: int = 256, min_area_share: float = MIN_AREA_SHARE,
                    max_area_share: float = MAX_AREA_SHARE,
                    max_border_share: float = MAX_BORDER_SHARE,
                    min_contrast: float = MIN_CONTRAST) -> Segmentation:
    """Segment the garment of one photo; `.ok` is False (with `.reason`) for implausible masks.

    GrabCut runs at `work_side` (the long side) for speed; its mask is upsampled smoothly (blur
    and threshold) to the image resolution. Deterministic: fixed k-means start, fixed RNG seed."""
    path = photo.path if isinstance(photo, GarmentPhoto) else Path(photo)
    image = load_photo(path, max_side)
    h, w = image.shape[:2]

    s = min(1.0, work_side / max(h, w))
    small = image if s == 1.0 else cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                                               interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    strip = max(2, round(0.02 * max(sh, sw)))
    prior = border_colour_distance(small, strip)
    on_border = garment_colour_on_border(small, strip)

    # GrabCut seeds from the border colour prior: far from every border colour -> probable
    # garment; the border strip itself -> sure background; the central region is biased to garment.
    # Only pixels almost exactly of a border colour are *sure* background: a larger threshold
    # carved bites out of garments that share a colour with the surface (camouflage on carpet,
    # beige on wood), which GrabCut could then not repair.
    gc = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    yy, xx = np.mgrid[0:sh, 0:sw]
    centre = (np.abs(xx - sw / 2) < 0.25 * sw) & (np.abs(yy - sh / 2) < 0.25 * sh)
    gc[prior > 2.0] = cv2.GC_PR_FGD
    gc[centre & (prior > 1.0)] = cv2.GC_PR_FGD
    gc[centre & (prior > 4.0)] = cv2.GC_FGD
    gc[prior < SURE_BG_PRIOR] = cv2.GC_BGD
    gc[_border_ring(sh, sw, strip)] = cv2.GC_BGD
    fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if fg.sum() < 0.005 * sh * sw:
        empty = np.zeros((h, w), bool)
        return Segmentation(image, empty, False, "no garment colour distinct from the border", prior=prior)
    if not (gc == cv2.GC_FGD).any():
        gc[centre & fg] = cv2.GC_FGD        # GrabCut needs at least one sure sample per class
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, grabcut_iters,
                cv2.GC_INIT_WITH_MASK)
    m_small = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)

    # Clean-up at work resolution: remove speckle and thin bridges, close small gaps.
    k = max(3, round(0.012 * max(sh, sw)) | 1)
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m_small = cv2.morphologyEx(m_small, cv2.MORPH_OPEN, ker)
    m_small = cv2.morphologyEx(m_small, cv2.MORPH_CLOSE, ker)

    # Upsample smoothly (threshold a blurred mask) to the image resolution.
    m = cv2.resize(m_small.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    m = cv2.GaussianBlur(m, (0, 0), max(0.5, 0.5 / s)) > 0.5

    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if len(areas) == 0:
        empty = np.zeros((h, w), bool)
        return Segmentation(image, empty, False, "empty mask", prior=prior)
    largest = int(np.argmax(areas)) + 1
    big = areas >= max(BLOB_SHARE * areas.max(), 0.01 * h * w)
    n_blobs = int(big.sum())
    mask = _fill_holes(lab == largest)

    area_share = float(mask.mean())
    # GrabCut was told the border strip is background, so "touching the border" means reaching
    # that strip: the share of the image perimeter where the mask comes within it (+2 px).
    reach = round(strip / s) + 2
    touched = (mask[:reach].any(0).sum() + mask[-reach:].any(0).sum()
               + mask[:, :reach].any(1).sum() + mask[:, -reach:].any(1).sum())
    border_share = float(touched / (2 * (h + w)))
    # How distinct the garment is from the surface: the border-colour distance over the mask,
    # in units of the border's own spread (at GrabCut's working resolution).
    m_work = cv2.resize(mask.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST).astype(bool)
    contrast = float(np.median(prior[m_work])) if m_work.any() else 0.0
    reason = ""
    if on_border > 0:
        reason = f"touches border (garment colour on {100 * on_border:.0f}% of the border)"
    elif area_share < min_area_share:
        reason = f"too small ({100 * area_share:.1f}% of image)"
    elif area_share > max_area_share:
        reason = f"too large ({100 * area_share:.1f}% of image)"
    elif border_share > max_border_share:
        reason = f"touches border ({100 * border_share:.1f}% of perimeter)"
    elif n_blobs > 1:
        reason = f"{n_blobs} blobs"
    elif contrast < min_contrast:
        # The "garment" is the surface's own colour: GrabCut followed texture, not a garment.
        reason = f"low contrast to the surface ({contrast:.1f})"
    return Segmentation(image, mask, reason == "", reason, area_share, border_share, n_blobs, contrast,
                        prior=prior)
