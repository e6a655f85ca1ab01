"""`synth gallery OUT`: a static HTML page to look at a rendered dataset (../shared/SPEC.md layout).

Per sample: the RGB image with the 2D skeleton drawn on it, the mask, the part labels in a fixed
palette, the depth (normalised over the person, background black) and the labels; above them the
dataset's configuration, counts and per-shard sidecar stats. Images are embedded as base64 data
URIs by default, so the one file opens anywhere; `inline=False` writes them beside the page.
"""
from synth.gallery.page import BONES, PART_PALETTE, write_gallery

__all__ = ["BONES", "PART_PALETTE", "write_gallery"]
