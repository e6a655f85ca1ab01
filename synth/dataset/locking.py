"""Advisory per-shard locks, so that two writers of one shard never destroy each other's work
(a requeued job-array task while the first still runs, two nodes given overlapping ranges).

A writer holds an exclusive `flock` on `shards/.shard-NNNNNN.lock` while it renders that shard.
The lock file records who holds it (host, pid, start time) and its mtime is a heartbeat, touched
after every sample. The kernel drops the lock when its holder dies, even by SIGKILL, so a lock
that can be taken means the previous writer is gone: only then are its leftovers (hidden partial
tars) removed and the shard rendered again. A second writer meanwhile waits (or, when it has
other shards to do, does those first) and finds the shard complete when the first is done.

The lock file is removed by its holder on release, while still locked; a writer that locked a
file which was removed meanwhile sees that the path no longer names the file it locked and
tries again, so two writers never both hold "the" lock.

NFS: Linux implements flock on NFS with byte-range locks (NLM for NFSv3, NFSv4's own locks), so
the lock holds across nodes when the server supports locking. A node that dies holding a lock
keeps it until the server's lease runs out (NFSv4: about 90 s), then a waiting writer takes over.
A mount with `nolock` (or `local_lock=flock`) keeps locks on the node and cannot protect writers
on different nodes; filesystems without locks at all (ENOLCK, EOPNOTSUPP) are reported once and
the shard is written without a lock (per-writer temporary names still keep writers apart).
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger("synth.render")

_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_warned_no_locks: set[str] = set()


def host_name() -> str:
    """This machine's name as it goes into file names (no dots, no separators)."""
    name = socket.gethostname() or "host"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # someone else's process: alive
        return True
    return True


@dataclass
class Holder:
    """Who holds (or last held) a lock, as recorded in the lock file."""
    host: str
    pid: int
    started: str
    idle_s: float            # seconds since the holder's last heartbeat

    def describe(self) -> str:
        return f"host {self.host} pid {self.pid} (since {self.started}, last progress {self.idle_s:.0f} s ago)"


class ShardBusy(RuntimeError):
    """The shard is being written by another live writer (and the caller asked not to wait)."""


class ShardStalled(RuntimeError):
    """Another writer holds the shard but has made no progress for the stall timeout; it may be
    alive on another node, so it is not taken over."""


class ShardLock:
    """An exclusive advisory lock on one shard (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None
        self.unlocked = False          # True when the filesystem has no locks: held in name only

    @property
    def held(self) -> bool:
        return self._fd is not None or self.unlocked

    @property
    def locked(self) -> bool:
        """Held with a real lock (not in name only on a filesystem without locks)."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if no live writer holds it; never blocks."""
        assert not self.held
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as e:
                os.close(fd)
                if e.errno not in _NO_LOCKS:
                    raise
                where = str(self.path.parent)
                if where not in _warned_no_locks:
                    _warned_no_locks.add(where)
                    log.warning("%s: the filesystem does not support file locks (%s); shards are written "
                                "without them, so do not let two runs write the same shard", where,
                                os.strerror(e.errno))
                self.unlocked = True
                return True
            # the holder before us may have removed the file after we opened it: then we hold a
            # lock on a file nobody else will see; start again on the path's current file
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self._fd = fd
            record = {"host": host_name(), "pid": os.getpid(),
                      "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            return True

    def heartbeat(self) -> None:
        """Mark progress (the lock file's mtime); waiting writers read it to tell hung from busy."""
        if self._fd is not None:
            try:
                os.utime(self._fd)
            except OSError:
                pass

    def holder(self) -> Holder | None:
        """Who holds the lock now (None when the file is gone or unreadable)."""
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                rec = json.loads(f.read(4096) or b"{}")
            return Holder(str(rec.get("host", "?")), int(rec.get("pid", -1)), str(rec.get("started", "?")),
                          max(0.0, time.time() - st.st_mtime))
        except (OSError, ValueError, TypeError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.path)       # while still locked: see the module docstring
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        self.unlocked = False


def acquire(lock: ShardLock, wait: bool, stall_timeout_s: float, name: str,
            poll_s: float = 0.25, max_poll_s: float = 2.0) -> None:
    """Take `lock`. Busy: raise ShardBusy when not `wait`, else wait until its holder releases
    it or dies; a holder without progress for `stall_timeout_s` (0 = wait for ever) is reported
    as ShardStalled rather than taken over (it may be alive on another node)."""
    if lock.try_acquire():
        return
    holder = lock.holder()
    if not wait:
        raise ShardBusy(f"{name} is being written by {holder.describe() if holder else 'another process'}")
    log.warning("%s is being written by %s; waiting for it", name,
                holder.describe() if holder else "another process")
    while not lock.try_acquire():
        holder = lock.holder()
        if holder is not None and stall_timeout_s and holder.idle_s > stall_timeout_s:
            raise ShardStalled(f"{name} is held by {holder.describe()}, no progress for more than "
                               f"{stall_timeout_s:g} s (executor.stall_timeout_s); stop that process and "
                               "run again")
        time.sleep(poll_s)
        poll_s = min(max_poll_s, poll_s * 1.5)


def partial_writer(name: str) -> tuple[str | None, int | None]:
    """(host, pid) from a partial tar's name `.shard-N.tar.HOST.PID.partial` (host None for the
    older `.shard-N.tar.PID.partial`)."""
    parts = name.split(".")
    try:
        pid = int(parts[-2])
    except (IndexError, ValueError):
        return None, None
    host = parts[-3] if len(parts) >= 6 else None
    return host, pid


def remove_stale_partials(shards_dir: Path, shard_name: str, keep: Path | None, locked: bool) -> list[Path]:
    """Remove the hidden partial tars of `shard_name` left by writers that are gone. Holding the
    shard's lock, every other partial is stale (each writer holds the lock while its partial
    exists); without it (no locks on this filesystem) only partials of this host's dead pids."""
    removed = []
    me = host_name()
    for p in shards_dir.glob(f".{shard_name}.tar.*.partial"):
        if keep is not None and p == keep:
            continue
        host, pid = partial_writer(p.name)
        if not locked and (host != me or pid is None or pid_alive(pid)):
            continue
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed


def any_lock_held(shards_dir: Path) -> Holder | None:
    """The holder of some shard lock in `shards_dir` that a live writer holds now, or None."""
    if not shards_dir.is_dir():
        return None
    for p in sorted(shards_dir.glob(".shard-*.lock")):
        probe = ShardLock(p)
        try:
            free = probe.try_acquire()
        except OSError:
            continue
        if free:
            probe.release()
            continue
        return probe.holder() or Holder("?", -1, "?", 0.0)
    return None
