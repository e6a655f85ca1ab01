"""Small I/O helpers shared by every stage: atomic writes (never a half-written file under the
final name) and a one-line error type that names the file and the fault."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


class InputError(ValueError):
    """Bad input data; the message is one line naming the file and the fault."""


def located_error(path: Path, lineno: int | None, fault: str) -> InputError:
    """The one-line error for a fault in a text file: "PATH:LINE: fault" (or "PATH: fault")."""
    return InputError(f"{path}:{lineno}: {fault}" if lineno is not None else f"{path}: {fault}")


def read_text(path: Path) -> str:
    """A text file's content (undecodable bytes replaced); a missing or unreadable file is an
    InputError naming it."""
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise located_error(path, None, "file not found") from None
    except OSError as e:
        raise located_error(path, None, f"cannot read ({e.strerror})") from None


def with_filename(e: OSError, path: os.PathLike | str) -> OSError:
    """`e` naming `path` when it names no file (a failed write on an open file says only "No
    space left on device"): the same errno, so the same OSError subclass."""
    if e.filename is not None:
        return e
    return OSError(e.errno, e.strerror or str(e), str(path))


@contextmanager
def atomic_open(path: Path):
    """A binary file to write `path` through: a hidden temporary file in the same folder, renamed
    to `path` when the block ends without an error (removed otherwise), so there is never a
    half-written file under the final name. An OSError names the file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise with_filename(e, path.parent) from e
    umask = os.umask(0)
    os.umask(umask)
    f = None
    try:
        os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; outputs are ordinary files
        f = open(fd, "wb")
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException as e:
        if f is not None:
            try:              # a failed flush (full disk) would only fail again here
                f.close()
            except OSError:
                pass
        else:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise with_filename(e, path) from e
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_open)."""
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
