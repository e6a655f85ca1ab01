"""HTTP(S) downloads that never leave a half-written file under the final name.

A download streams into a hidden `.NAME.partial` sibling and is renamed when complete (and its
size / md5 checked). An interrupted download is resumed with an HTTP Range request when the server
supports it (else restarted). Transient faults (timeouts, connection resets, HTTP 5xx/408/429) are
retried with a growing pause; permanent ones (404 etc.) fail at once. Every failure is an
`AssetError` whose one-line message names the URL and the fault.
"""
from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from synth.io_utils import InputError, file_digest

CHUNK = 1 << 16
# a download of unknown size stops here (the largest upstream archive is a few hundred MB)
MAX_DOWNLOAD_BYTES = 16 << 30
MAX_INDEX_BYTES = 256 << 20      # a mirror's MANIFEST.json (the reference mirror's: ~1 MB)
USER_AGENT = "synth-assets/0.1 (+https://github.com/; research data fetcher)"


class AssetError(InputError):
    """A fetch or verification fault; one line naming the URL or file and the fault."""


def md5_file(path: Path) -> str:
    return file_digest(path, "md5")


def is_complete(path: Path, size: int | None = None, md5: str | None = None) -> bool:
    """A file already there counts as complete when it matches what is known of it."""
    if not path.is_file():
        return False
    if size is not None and path.stat().st_size != size:
        return False
    if md5 is not None and md5_file(path) != md5:
        return False
    return True


def _fault(e: BaseException) -> tuple[str, bool]:
    """(one-line description, worth retrying)."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}", e.code in (408, 429) or e.code >= 500
    if isinstance(e, (socket.timeout, TimeoutError)):
        return "timed out", True
    if isinstance(e, urllib.error.URLError):
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "timed out", True
        return f"cannot connect ({reason})", True
    if isinstance(e, (ConnectionError, OSError)):
        return f"connection failed ({e.__class__.__name__}: {e})", True
    return f"{e.__class__.__name__}: {e}", False


def download(url: str, dest: Path, *, timeout_s: float = 60.0, retries: int = 3,
             size: int | None = None, md5: str | None = None, progress: bool = False,
             desc: str | None = None) -> bool:
    """Fetch `url` into `dest`. Returns False when `dest` was already complete (nothing fetched).

    `size`/`md5`, when given, decide whether an existing file is complete and are checked after
    the download (a mismatch is a fault, the partial file is removed). With `size` the download
    stops at it: a server announcing or sending more is a fault as soon as it does (the extra
    bytes are never read to the end); without it at MAX_DOWNLOAD_BYTES.
    """
    dest = Path(dest)
    if dest.exists() and is_complete(dest, size, md5):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    last = "no attempt"
    for attempt in range(max(1, retries)):
        if attempt:
            time.sleep(min(2.0 ** (attempt - 1), 10.0))
        try:
            _fetch_once(url, partial, timeout_s, progress, desc or dest.name,
                        size if size is not None else MAX_DOWNLOAD_BYTES, size is not None)
        except AssetError:
            raise
        except BaseException as e:  # noqa: BLE001 - classified below, re-raised as one line
            if isinstance(e, KeyboardInterrupt):
                raise
            last, transient = _fault(e)
            if not transient:
                break
            continue
        got = partial.stat().st_size
        if size is not None and got != size:
            partial.unlink(missing_ok=True)
            raise AssetError(f"{url}: got {got} bytes, expected {size}")
        if md5 is not None:
            digest = md5_file(partial)
            if digest != md5:
                partial.unlink(missing_ok=True)
                raise AssetError(f"{url}: md5 {digest} does not match the expected {md5}")
        os.replace(partial, dest)
        return True
    tries = f" after {retries} tries" if retries > 1 and last != "no attempt" else ""
    raise AssetError(f"{url}: {last}{tries} (timeout {timeout_s:g} s)" if last == "timed out"
                     else f"{url}: {last}{tries}")


def _fetch_once(url: str, partial: Path, timeout_s: float, progress: bool, desc: str, limit: int,
                indexed: bool) -> None:
    """One attempt: append to `partial` (resuming it with a Range request), reading at most
    `limit` bytes in all (+1 to see that there are more: a fault, the partial is removed)."""
    what = f"the indexed {limit}" if indexed else f"the limit of {limit}"
    have = partial.stat().st_size if partial.exists() else 0
    if have > limit:                        # a stale partial larger than the file: start over
        partial.unlink()
        have = 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:          # the partial file is already whole (or stale): restart
            partial.unlink(missing_ok=True)
            raise ConnectionError("range not satisfiable, restarting") from None
        raise
    with resp:
        if have and resp.status != 206:     # server ignores Range: start over
            have = 0
        length = resp.headers.get("Content-Length")
        try:
            total = int(length) + have if length is not None else None
        except ValueError:
            total = None
        if total is not None and total > limit:
            partial.unlink(missing_ok=True)
            raise AssetError(f"{url}: the server announces {total} bytes, more than {what} bytes")
        bar = None
        if progress:
            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=desc, leave=False)
        try:
            with open(partial, "ab" if have else "wb") as f:
                left = limit - have
                while True:
                    block = resp.read(min(CHUNK, left + 1))
                    if not block:
                        break
                    if len(block) > left:
                        f.close()
                        partial.unlink(missing_ok=True)
                        raise AssetError(f"{url}: the server sends more than {what} bytes; stopped there")
                    left -= len(block)
                    f.write(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    if total is not None and partial.stat().st_size < total:
        raise ConnectionError(f"connection closed after {partial.stat().st_size} of {total} bytes")


def fetch_bytes(url: str, *, timeout_s: float = 60.0, retries: int = 3,
                max_bytes: int = MAX_INDEX_BYTES) -> bytes:
    """A small file (an index) straight into memory, with the same retries and errors; more
    than `max_bytes` is a fault (read no further)."""
    last = ""
    for attempt in range(max(1, retries)):
        if attempt:
            time.sleep(min(2.0 ** (attempt - 1), 10.0))
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                data = resp.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise AssetError(f"{url}: larger than {max_bytes} bytes; not an index")
            return data
        except AssetError:
            raise
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            last, transient = _fault(e)
            if not transient:
                break
    raise AssetError(f"{url}: {last}")
