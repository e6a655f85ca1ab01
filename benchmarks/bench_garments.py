"""Garment image math on the real clothing mirror: segmentation of EVERY photo (time per photo,
IoU against the 13 given masks, share rejected and why), continuous DTW time (128 and 256 samples,
with the start search), MLS warp time at 512 px (three modes), and the contour distance between a
warped garment and a target silhouette before and after warping.

    python benchmarks/bench_garments.py [DATA_DIR] [--sheet PATH.png]
        DATA_DIR: default ../shared/data beside the repo; --sheet writes a contact sheet of the
        rejected photos (mask outline + reason) for inspection.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without install

from synth.textures.contours import align_bbox, contour_distance, mask_contour
from synth.textures.dtw import match_closed_contours
from synth.textures.mls import MODES, mls_warp
from synth.textures.segment import list_garment_photos, load_given_mask, mask_iou, segment_garment


def _draw(polys, shape=(512, 512)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for poly in polys:
        cv2.fillPoly(m, [np.array(poly, np.int32)], 1)
    return m.astype(bool)


# Frontal garment regions drawn with cv2, one per garment kind (the body side's silhouettes are
# C-BODY's; these only give the warp a target of the right kind).
TORSO = [[170, 130], [340, 130], [340, 420], [170, 420]]
TARGETS = {
    "short sleeves": _draw([TORSO, [[170, 130], [100, 200], [130, 240], [175, 200]],
                            [[340, 130], [410, 200], [380, 240], [335, 200]]]),
    "long sleeves": _draw([TORSO, [[170, 130], [80, 380], [115, 395], [175, 200]],
                           [[340, 130], [430, 380], [395, 395], [335, 200]]]),
    "long legs": _draw([[[180, 60], [330, 60], [330, 170], [180, 170]],
                        [[180, 120], [255, 150], [235, 470], [170, 470]],
                        [[330, 120], [255, 150], [275, 470], [340, 470]]]),
    "short legs": _draw([[[180, 60], [330, 60], [330, 170], [180, 170]],
                         [[180, 120], [255, 150], [245, 300], [175, 300]],
                         [[330, 120], [255, 150], [265, 300], [335, 300]]]),
    "skirt": _draw([[[190, 60], [320, 60], [350, 380], [160, 380]]]),
}
TARGET_OF = {"t-shirt": "short sleeves", "top": "short sleeves", "longsleeve": "long sleeves",
             "shirt": "long sleeves", "outwear": "long sleeves", "pants": "long legs",
             "shorts": "short legs", "skirt": "skirt"}


def reason_kind(reason: str) -> str:
    return reason.split(" (")[0] if "(" in reason else ("several blobs" if "blobs" in reason else reason)


def timed(fn, repeat: int):
    """(wall s, CPU s of this process) per call. On a shared machine wall time includes waiting
    for a core; CPU time is what the work costs."""
    fn()                                    # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat, (time.process_time() - c0) / repeat


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--sheet", default=None)
    args = ap.parse_args(argv)
    photos = list_garment_photos(Path(args.data_dir))

    # --- segmentation of every photo
    segs, times, cpu, ious = {}, [], [], []
    for p in photos:
        t0, c0 = time.perf_counter(), time.process_time()
        s = segment_garment(p)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        segs[p.id] = s
        given = load_given_mask(p, s.mask.shape)
        if given is not None:
            ious.append(mask_iou(s.mask, given))
    times = np.array(times)
    print(f"segmentation: {len(photos)} photos, {1000 * times.mean():.0f} ms/photo "
          f"wall (median {1000 * np.median(times):.0f}, max {1000 * times.max():.0f}), "
          f"{1000 * np.mean(cpu):.0f} ms/photo CPU, at max_side 512")
    ious = np.array(ious)
    print(f"IoU vs given masks ({len(ious)} VITON-HD photos): mean {ious.mean():.3f}, "
          f"min {ious.min():.3f}, median {np.median(ious):.3f}")
    rejected = [(p, segs[p.id]) for p in photos if not segs[p.id].ok]
    print(f"rejected: {len(rejected)}/{len(photos)} = {100 * len(rejected) / len(photos):.1f}%")
    for kind, n in Counter(reason_kind(s.reason) for _, s in rejected).most_common():
        print(f"  {kind}: {n}")
    for cat in ("upper", "lower"):
        sub = [p for p in photos if p.category == cat]
        nrej = sum(not segs[p.id].ok for p in sub)
        print(f"  {cat}: {nrej}/{len(sub)} rejected")
    by_sub = Counter(p.subcategory for p, _ in rejected)
    print("  by folder: " + ", ".join(f"{k} {v}" for k, v in sorted(by_sub.items())))
    for p, s in rejected:
        print(f"    {p.id}: {s.reason}")
    area = np.array([s.area_share for s in segs.values() if s.ok])
    print(f"accepted masks: area share {100 * area.min():.0f}-{100 * area.max():.0f}% "
          f"(median {100 * np.median(area):.0f}%)")

    if args.sheet and rejected:
        tiles = []
        for p, s in rejected:
            im = s.image.copy()
            cs, _ = cv2.findContours(s.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(im, cs, -1, (255, 0, 255), 3)
            im = cv2.resize(im, (192, 256))
            cv2.putText(im, s.reason[:30], (3, 250), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1)
            tiles.append(im)
        while len(tiles) % 8:
            tiles.append(np.zeros_like(tiles[0]))
        sheet = np.vstack([np.hstack(tiles[i:i + 8]) for i in range(0, len(tiles), 8)])
        cv2.imwrite(args.sheet, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"contact sheet of rejected photos: {args.sheet}")

    # --- DTW and MLS on accepted real garments vs. target silhouettes
    accepted = [p for p in photos if segs[p.id].ok]
    for n in (128, 256):
        g = mask_contour(segs[accepted[20].id].mask, n)
        body = mask_contour(TARGETS["short sleeves"], n)
        dt, dc = timed(lambda: match_closed_contours(body, g), 5)
        ft, fc = timed(lambda: match_closed_contours(body, g, shifts=np.arange(n)), 2)
        print(f"continuous DTW {n}x{n} with start search (coarse-to-fine): {1000 * dt:.1f} ms wall, "
              f"{1000 * dc:.1f} ms CPU; all {n} shifts at full resolution: {1000 * ft:.1f} ms wall, "
              f"{1000 * fc:.1f} ms CPU")

    seg0 = segs[accepted[20].id]
    body = mask_contour(TARGETS["short sleeves"], 128)
    m = match_closed_contours(body, mask_contour(seg0.mask, 128))
    for mode in MODES:
        dt, dc = timed(lambda: mls_warp(seg0.image, m.b_pts, body, (512, 512), mode=mode, src_mask=seg0.mask), 3)
        print(f"MLS {mode:10s} 512x512 output, 128 control points, grid_step 8: {1000 * dt:.0f} ms wall, "
              f"{1000 * dc:.0f} ms CPU")

    print("contour distance (px, 512x512 target): before = garment bbox-fitted to the target; after = "
          "warped garment mask (rigid MLS, prealigned) with alpha 1 (smooth interior) and with alpha 2 + "
          "correspondences smoothed over 9 samples (tighter outline); DTW deformation; 6 random accepted "
          "garments per kind")
    rng = np.random.default_rng(0)
    for sub, kind in TARGET_OF.items():
        pool = [p for p in accepted if p.subcategory == sub]
        if not pool:
            continue
        tgt = TARGETS[kind]
        body = mask_contour(tgt, 128)
        before, after1, after2, defs = [], [], [], []
        for i in rng.choice(len(pool), size=min(6, len(pool)), replace=False):
            s = segs[pool[i].id]
            g = mask_contour(s.mask, 128)
            m = match_closed_contours(body, g)
            before.append(contour_distance(align_bbox(g, body), body))
            defs.append(m.deformation)
            _, valid = mls_warp(s.image, m.b_pts, body, tgt.shape, mode="rigid", src_mask=s.mask)
            after1.append(contour_distance(mask_contour(valid, 128), body) if valid.any() else np.inf)
            ms = match_closed_contours(body, g, smooth=9)
            _, valid = mls_warp(s.image, ms.b_pts, body, tgt.shape, mode="rigid", alpha=2.0, src_mask=s.mask)
            after2.append(contour_distance(mask_contour(valid, 128), body) if valid.any() else np.inf)
        print(f"  {sub:10s} -> {kind:13s}: before {np.mean(before):5.2f} ({min(before):.1f}-{max(before):.1f})"
              f" -> after a1 {np.mean(after1):5.2f} ({min(after1):.1f}-{max(after1):.1f}),"
              f" a2+smooth {np.mean(after2):5.2f} ({min(after2):.1f}-{max(after2):.1f});"
              f" deformation {np.mean(defs):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
