"""Opening and checking the photos the stages read (backgrounds, garment photos, HDRIs), so that
every decoder fault is one line naming the file: unreadable, truncated, too small for the crops
and filters the stages apply, or so large that decoding it would take gigabytes.

Limits: an image must be at least MIN_IMAGE_SIDE pixels on each side and at most
MAX_IMAGE_PIXELS pixels in all (Pillow's own decompression-bomb threshold, ~89 MP: a photo
above it is refused rather than decoded, since a 256 px render gains nothing from it).
"""
from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

from synth.io_utils import InputError

MIN_IMAGE_SIDE = 16
MAX_IMAGE_PIXELS = int(Image.MAX_IMAGE_PIXELS or 89_478_485)
_JPEG = {".jpg", ".jpeg"}


def open_image(path: Path, what: str, min_side: int = MIN_IMAGE_SIDE) -> Image.Image:
    """The image at `path`, opened (header read, nothing decoded) and within the size limits;
    InputError naming the file and the fault otherwise."""
    try:
        with warnings.catch_warnings():     # above the limit is refused below, in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise InputError(f"{path}: {what} has more than {MAX_IMAGE_PIXELS} pixels (the limit); "
                         "use a smaller copy") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: unreadable {what} ({_reason(e)})") from None
    w, h = im.size
    problem = None
    if w * h > MAX_IMAGE_PIXELS:
        problem = f"is {w}x{h} pixels, more than the limit of {MAX_IMAGE_PIXELS}; use a smaller copy"
    elif min(w, h) < min_side:
        problem = f"is {w}x{h} pixels, smaller than the minimum {min_side}x{min_side}"
    if problem is not None:
        im.close()
        raise InputError(f"{path}: {what} {problem}")
    return im


def verify_image(path: Path, what: str, min_side: int = MIN_IMAGE_SIDE) -> None:
    """Decode the whole file once (JPEG at reduced scale: every compressed byte is still read,
    so truncation and corruption show, at a fraction of the cost); InputError naming it if it
    does not decode."""
    im = open_image(path, what, min_side)
    try:
        with im:
            if Path(path).suffix.lower() in _JPEG:
                im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
            im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: unreadable {what} ({_reason(e)})") from None


def cv2_imread(path: Path, flags: int):
    """cv2.imread without OpenCV's own log lines on stderr (a broken file is reported by the
    caller, in one line); None when the file does not decode."""
    import cv2
    level = cv2.getLogLevel()
    cv2.setLogLevel(0)          # LOG_LEVEL_SILENT
    try:
        return cv2.imread(str(path), flags)
    except cv2.error:
        return None
    finally:
        cv2.setLogLevel(level)


def verify_hdri(path: Path) -> None:
    """Decode an HDRI (Radiance .hdr or OpenEXR) with OpenCV; InputError naming it otherwise."""
    import cv2
    img = cv2_imread(path, cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or min(img.shape[:2]) < 1:
        raise InputError(f"{path}: unreadable HDRI (OpenCV cannot decode it)")


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{e.__class__.__name__}: {text}" if text else e.__class__.__name__
