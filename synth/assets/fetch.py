"""`synth assets fetch`: fill the data directory with the configured asset sets.

Three ways, in this order of preference:
- `mirror`: a local folder laid out like shared/data; each set's files are copied (or, with
  `link=True`, symlinked to save space).
- `base_url`: any HTTP server serving such a folder. The server's `MANIFEST.json` (written by
  `write_index`, or by a previous `fetch` into the served folder) lists each set's files with
  sizes and md5s; every file is downloaded and checked.
- upstream (neither given): the original sources in `synth.assets.manifest`, downloaded and turned
  into the same layout (see that module for how faithful each set is).

Files already complete are skipped, so an interrupted fetch is resumed by running it again.
Every fault is one line naming the URL or file. After the sets are in place they are verified and
DEST/MANIFEST.json is written (atomically).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from synth.assets.download import AssetError, download, fetch_bytes, is_complete
from synth.assets.manifest import SET_NAMES, SETS, AssetSet, Source
from synth.assets.transforms import POST_STEPS, TRANSFORMS, Extracted
from synth.assets.verify import MANIFEST_NAME, VerifyReport, set_files, verify, write_index
from synth.config import AssetsConfig, ConfigError
from synth.io_utils import atomic_write_bytes, atomic_write_text

DOWNLOAD_CACHE = ".cache/downloads"   # under the data directory; hidden, so never indexed
# Per archive, the files an earlier run extracted from it (with sizes): a re-run whose files are
# all still there skips the archive instead of downloading it again.
DONE_MARKERS = ".cache/extracted"


@dataclass
class SetResult:
    name: str
    source: dict
    files: int = 0        # files of the set now in place
    fetched: int = 0      # of which copied/downloaded/extracted by this run
    skipped: int = 0      # already complete


@dataclass
class FetchResult:
    dest: Path
    sets: dict[str, SetResult] = field(default_factory=dict)
    report: VerifyReport | None = None
    manifest: Path | None = None

    def summary(self) -> str:
        lines = [f"data directory {self.dest}:"]
        for s in self.sets.values():
            lines.append(f"  {s.name}: {s.files} files ({s.fetched} fetched, {s.skipped} already there) "
                         f"from {s.source.get('where', s.source.get('kind'))}")
        return "\n".join(lines)


def fetch(settings: AssetsConfig | None = None, *, dest: Path | str, sets=None,
          mirror: Path | str | None = None, base_url: str | None = None, link: bool = False,
          timeout_s: float | None = None, retries: int = 3, progress: bool = True,
          deep_verify: bool = False, keep_downloads: bool = False,
          url_map: dict[str, str] | None = None, allow_unverified: bool = False) -> FetchResult:
    """Fill `dest` (the data directory) with the asset `sets` (default: `settings.sets`, the config's
    `assets` section), from `mirror` or `base_url` (defaults: `settings.mirror` / `settings.base_url`)
    or else from upstream. Raises AssetError (an InputError) on any fault, naming the URL or file.

    `url_map` rewrites upstream URL prefixes ({"http://mocap.cs.cmu.edu/": "http://cache.local/cmu/"}),
    for a caching proxy or a local copy of the upstream archives. `link` (mirror only) symlinks
    instead of copying. `keep_downloads` keeps upstream archives in DEST/.cache/downloads.
    `allow_unverified` (base_url only) downloads index entries that give neither size nor md5,
    which are refused otherwise.
    """
    settings = settings or AssetsConfig()
    dest = Path(dest)
    names = list(sets if sets is not None else settings.sets)
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise ConfigError(f"config key 'assets.sets': unknown set(s) {unknown} (known: {list(SET_NAMES)})")
    mirror = mirror if mirror is not None else settings.mirror
    base_url = base_url if base_url is not None else settings.base_url
    if mirror and base_url:
        raise ConfigError("give either a mirror folder or a base_url, not both")
    timeout_s = float(timeout_s if timeout_s is not None else settings.timeout_s)

    dest.mkdir(parents=True, exist_ok=True)
    result = FetchResult(dest=dest)
    if mirror:
        mirror = Path(mirror)
        if not mirror.is_dir():
            raise AssetError(f"{mirror}: mirror folder not found")
        for n in names:
            result.sets[n] = _from_mirror(mirror, dest, n, link, progress)
    elif base_url:
        index_url = base_url.rstrip("/") + "/" + MANIFEST_NAME
        index = _read_remote_index(index_url, timeout_s, retries)
        for n in names:
            result.sets[n] = _from_base_url(base_url.rstrip("/"), index_url, index, dest, n,
                                            timeout_s, retries, progress, allow_unverified)
    else:
        for n in names:
            spec = _map_urls(SETS[n], url_map) if url_map else SETS[n]
            result.sets[n] = _from_upstream(spec, dest, timeout_s, retries, progress, keep_downloads)

    report = verify(dest, names, deep=deep_verify)
    result.report = report
    if not report.ok:
        problems = report.all_problems()
        more = f" (+{len(problems) - 1} more; `synth assets verify` lists them)" if len(problems) > 1 else ""
        raise AssetError(f"fetched sets failed verification: {problems[0]}{more}")
    for n in names:
        result.sets[n].files = report.sets[n].file_count
    result.manifest = write_index(dest, names, sources={n: result.sets[n].source for n in names})
    return result


# ------------------------------------------------------------------------------------------------
# From a local mirror


def _from_mirror(mirror: Path, dest: Path, name: str, link: bool, progress: bool) -> SetResult:
    src_root = mirror / name
    if not src_root.is_dir():
        raise AssetError(f"{src_root}: set {name} not found in the mirror")
    res = SetResult(name, {"kind": "mirror", "where": str(mirror.resolve()), "link": link})
    files = set_files(mirror, name)
    if not files:
        raise AssetError(f"{src_root}: set {name} is empty in the mirror")
    bar = _bar(progress, len(files), f"{name} (mirror)", unit="file")
    try:
        for src in files:
            target = dest / src.relative_to(mirror)
            if _place(src, target, link):
                res.fetched += 1
            else:
                res.skipped += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return res


def _place(src: Path, target: Path, link: bool) -> bool:
    """Copy or symlink one file; False when the target is already in place."""
    src_abs = src.resolve()
    if link:
        if target.is_symlink() and Path(os.readlink(target)) == src_abs:
            return False
    elif target.is_file() and not target.is_symlink() and target.stat().st_size == src.stat().st_size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        if link:
            os.symlink(src_abs, tmp)
        else:
            with open(src, "rb") as fi, open(tmp, "wb") as fo:
                shutil.copyfileobj(fi, fo, 1 << 20)
        os.replace(tmp, target)
    except OSError as e:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        raise AssetError(f"{target}: cannot {'link' if link else 'copy'} from {src} ({e.strerror or e})") from None
    return True


# ------------------------------------------------------------------------------------------------
# From an HTTP server serving a mirror


def _read_remote_index(index_url: str, timeout_s: float, retries: int) -> dict:

    try:
        raw = fetch_bytes(index_url, timeout_s=timeout_s, retries=retries)
    except AssetError as e:
        raise AssetError(f"{e} (a mirror served over HTTP needs its index: run `synth assets index DIR` "
                         f"on the served folder)") from None
    try:
        index = json.loads(raw)
    except ValueError:
        raise AssetError(f"{index_url}: not valid JSON") from None
    if not isinstance(index, dict) or not isinstance(index.get("sets"), dict):
        raise AssetError(f"{index_url}: not a synth-assets index (no 'sets' mapping)")
    return index


def _index_entry(index_url: str, rel: str, meta) -> tuple[int | None, str | None]:
    """(size, md5) of one file of a mirror index, checked: AssetError naming the index and the
    entry when they are not a whole number of bytes and 32 hex digits."""
    if not isinstance(meta, dict):
        raise AssetError(f"{index_url}: entry {rel!r} is not a mapping with size and md5")
    size, md5 = meta.get("size"), meta.get("md5")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise AssetError(f"{index_url}: entry {rel!r}: size {str(size)[:40]!r} is not a whole number of bytes")
    if md5 is not None and not (isinstance(md5, str) and re.fullmatch(r"[0-9a-fA-F]{32}", md5)):
        raise AssetError(f"{index_url}: entry {rel!r}: md5 {str(md5)[:40]!r} is not 32 hex digits")
    return size, md5.lower() if md5 else None


def _from_base_url(base: str, index_url: str, index: dict, dest: Path, name: str, timeout_s: float,
                   retries: int, progress: bool, allow_unverified: bool = False) -> SetResult:
    entry = index["sets"].get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict) or not entry["files"]:
        raise AssetError(f"{index_url}: the index has no set {name}")
    res = SetResult(name, {"kind": "base_url", "where": base})
    files = {rel: _index_entry(index_url, rel, meta) for rel, meta in entry["files"].items()}
    unverified = sorted(rel for rel, (size, md5) in files.items() if size is None and md5 is None)
    if unverified and not allow_unverified:
        raise AssetError(f"{index_url}: entry {unverified[0]!r}" + (f" (and {len(unverified) - 1} more)"
                                                                   if len(unverified) > 1 else "")
                         + " gives neither size nor md5, so a broken download could not be told from a "
                         "complete one; fix the index or pass --allow-unverified")
    total = sum(size or 0 for size, _ in files.values())
    bar = _bar(progress, total, f"{name} ({base})", unit="B")
    try:
        for rel, (size, md5) in sorted(files.items()):
            parts = Path(rel).parts
            if Path(rel).is_absolute() or ".." in parts or not parts or parts[0] != name:
                raise AssetError(f"{index_url}: bad path {rel!r} in set {name}")
            url = f"{base}/{urllib.parse.quote(rel)}"
            if download(url, dest / rel, timeout_s=timeout_s, retries=retries, size=size, md5=md5):
                res.fetched += 1
            else:
                res.skipped += 1
            if bar is not None:
                bar.update(size or 0)
    finally:
        if bar is not None:
            bar.close()
    return res


# ------------------------------------------------------------------------------------------------
# From upstream


def _from_upstream(spec: AssetSet, dest: Path, timeout_s: float, retries: int, progress: bool,
                   keep_downloads: bool) -> SetResult:
    res = SetResult(spec.name, {"kind": "upstream", "where": "upstream URLs (synth.assets.manifest)"})
    records: list[Extracted] = []
    cache = dest / DOWNLOAD_CACHE
    used_archives: list[Path] = []
    files = [s for s in spec.sources if s.kind == "file"]
    bar = _bar(progress and len(files) > 1, len(files), f"{spec.name} (upstream)", unit="file")
    try:
        for src in spec.sources:
            try:
                if src.kind == "file":
                    url, fetched = _download_first(src, dest / src.dest, timeout_s, retries)
                    res.fetched += fetched
                    res.skipped += not fetched
                    records.append(Extracted(src.dest, url))
                    if bar is not None:
                        bar.update(1)
                elif src.kind == "zip":
                    archive = cache / _archive_name(src.urls[0])
                    marker = dest / DONE_MARKERS / f"{archive.name}.json"
                    done = _read_done(marker, dest)
                    if done is not None:            # extracted by an earlier run and still intact
                        records += done
                        res.skipped += len(done)
                        continue
                    url, _ = _download_first(src, archive, timeout_s, retries, progress=progress)
                    used_archives.append(archive)
                    got = _extract_zip(src, url, archive, dest)
                    _write_done(marker, dest, got)
                    records += got
                    res.fetched += len(got)
                else:
                    raise AssetError(f"{src.urls[0]}: unknown source kind {src.kind!r}")
            except AssetError as e:
                if not src.optional:
                    raise
                print(f"warning: {e} (optional file, skipped)", file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
    for step in spec.post:
        POST_STEPS[step](dest, records)
    source_md = dest / spec.name / "SOURCE.md"
    if not source_md.exists():
        atomic_write_text(source_md, _source_md(spec, records))
    if not keep_downloads:
        for a in used_archives:
            a.unlink(missing_ok=True)
    return res


def _write_done(marker: Path, dest: Path, records: list[Extracted]) -> None:

    rows = [{"dest": r.dest, "source": r.source, "info": r.info, "size": (dest / r.dest).stat().st_size}
            for r in records]
    atomic_write_text(marker, json.dumps(rows))


def _read_done(marker: Path, dest: Path) -> list[Extracted] | None:

    if not marker.is_file():
        return None
    try:
        rows = json.loads(marker.read_text())
        if not all(is_complete(dest / r["dest"], r["size"]) for r in rows):
            return None
        return [Extracted(r["dest"], r["source"], r.get("info", {})) for r in rows]
    except (ValueError, KeyError, TypeError):
        return None


def _map_urls(spec: AssetSet, url_map: dict[str, str]) -> AssetSet:
    def remap(url: str) -> str:
        for old, new in url_map.items():
            if url.startswith(old):
                return new + url[len(old):]
        return url
    sources = tuple(dataclasses.replace(s, urls=tuple(remap(u) for u in s.urls)) for s in spec.sources)
    return dataclasses.replace(spec, sources=sources)


def _download_first(src: Source, target: Path, timeout_s: float, retries: int,
                    progress: bool = False) -> tuple[str, bool]:
    """Try each URL of a source in turn; (the URL that worked, whether anything was fetched)."""
    faults = []
    for url in src.urls:
        try:
            fetched = download(url, target, timeout_s=timeout_s, retries=retries, size=src.size,
                               md5=src.md5, progress=progress)
            return url, fetched
        except AssetError as e:
            faults.append(str(e))
    raise AssetError(faults[0] if len(faults) == 1 else "all sources failed: " + "; ".join(faults))


def _archive_name(url: str) -> str:
    path = urllib.parse.urlparse(url).path.strip("/")
    parts = path.split("/")
    # GitHub archives are all called COMMIT.zip: prefix the repository name.
    if "archive" in parts and parts.index("archive") >= 1:
        return f"{parts[parts.index('archive') - 1]}-{parts[-1]}"
    return parts[-1] or "download"


def _extract_zip(src: Source, url: str, archive: Path, dest: Path) -> list[Extracted]:
    """Apply the source's rules to the archive's members; every listed (`only`) file must be found."""
    compiled = [(re.compile(r.pattern), r) for r in src.rules]
    out: list[Extracted] = []
    found: dict[int, set[str]] = {i: set() for i in range(len(src.rules))}
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        archive.unlink(missing_ok=True)   # so that the next run downloads it again
        raise AssetError(f"{url}: bad archive ({e})") from None
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = info.filename
            if src.strip_top:
                name = name.split("/", 1)[1] if "/" in name else name
            for i, (rx, rule) in enumerate(compiled):
                m = rx.fullmatch(name)
                if not m:
                    continue
                target = rule.dest.format("", *m.groups())
                if rule.only is not None and target not in rule.only:
                    break
                where = f"{url}#{info.filename}"
                try:
                    data = zf.read(info)
                except (zipfile.BadZipFile, OSError, EOFError) as e:
                    archive.unlink(missing_ok=True)
                    raise AssetError(f"{url}: bad archive member {info.filename} ({e})") from None
                data, meta = TRANSFORMS[rule.transform](data, where)
                atomic_write_bytes(dest / target, data)
                out.append(Extracted(target, f"{url}#{name}", meta))
                found[i].add(target)
                break
    checked: list[frozenset] = []
    for i, rule in enumerate(src.rules):
        if rule.only is not None:
            if any(rule.only is c for c in checked):
                continue
            checked.append(rule.only)
            # Rules may share one `only` list (upper and lower garments): what any of them found counts.
            got = set().union(*(found[j] for j, r in enumerate(src.rules) if r.only is rule.only))
            lacking = sorted(rule.only - got)
            if lacking:
                raise AssetError(f"{url}: archive lacks {len(lacking)} of the listed files, e.g. {lacking[0]}")
        elif not found[i] and rule.transform != "copy":
            raise AssetError(f"{url}: archive has no member matching {rule.pattern}")
    return out


def _source_md(spec: AssetSet, records: list[Extracted]) -> str:
    urls = sorted({r.source.split("#", 1)[0] for r in records})
    shown = urls if len(urls) <= 20 else urls[:10] + [f"... ({len(urls) - 10} more)"]
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [f"# {spec.title}", "", f"Fetched from upstream by `synth assets fetch` on {when}.", "",
             f"License / terms: {spec.license}", "", "Sources:"] + [f"- {u}" for u in shown]
    if spec.notes:
        lines += ["", spec.notes]
    lines += ["", "How this differs from the reference mirror: see synth/assets/manifest.py."]
    return "\n".join(lines) + "\n"


def _bar(enabled: bool, total: int, desc: str, unit: str):
    if not enabled:
        return None

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=False)
