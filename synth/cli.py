"""`synth`: a thin command line over the stages (assets, sample-poses, render, train, eval, predict,
gallery), and `synth doctor`, which checks what a render node offers.

Every subcommand takes `--config FILE` and trailing `key.sub=value` overrides of the one
configuration (synth/config.py; defaults in synth/defaults.yaml). stdout carries the command's
result only (a JSON summary, a table, the path written); progress, warnings and any third-party
output go to stderr.

Every fault ends in one line on stderr, `synth CMD: error: ...` (`error_line`): bad input or
configuration exits 2; an operating-system fault (a read-only or full disk: the file or folder
is named), a decoder fault or anything unforeseen exits 1. `--debug`, before or after the
subcommand, prints the traceback before that line.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import traceback
import warnings
from pathlib import Path

from synth.body.model import BodyModelError
from synth.config import Config, ConfigError, load_config, save_config
from synth.geometry import PHOTO_FOV_DEG
from synth.io_utils import InputError, atomic_write_json
from synth.limits import MAX_POSES, check_count

_DEFAULTS = Config()
_DEBUG_HELP = "print the traceback of an error (before its one-line message)"


def _default(dotted: str):
    """The model default of a config key, for help texts."""
    node = _DEFAULTS
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" where there is a default worth showing (not None / False)."""

    def _get_help_string(self, action):
        default = action.default
        if default is None or default is False or default is argparse.SUPPRESS or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _config(args, base: dict | None = None) -> Config:
    overrides = list(getattr(args, "overrides", None) or [])
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "data_dir", None) is not None:
        overrides.append(f"data_dir={json.dumps(args.data_dir)}")
    return load_config(args.config, overrides, base=base)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file with overrides of synth/defaults.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. render.samples=32")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, help=f"shortcut for seed=N (default: config seed, {_default('seed')})")
    p.add_argument("--data-dir", help="data directory (default: config data_dir, else $SYNTH_DATA, else ./data)")
    _config_args(p)


def cmd_assets(args, out) -> int:
    cfg = _config(args)
    from synth.assets import fetch, verify, write_index
    sets = args.sets.split(",") if args.sets else cfg.assets.sets
    data = cfg.paths().data
    if args.action == "fetch":
        result = fetch(cfg.assets, dest=data, sets=sets, mirror=Path(args.mirror) if args.mirror else None,
                       base_url=args.base_url, link=args.link, deep_verify=args.deep,
                       allow_unverified=args.allow_unverified)
        print(result.summary(), file=out)
    elif args.action == "verify":
        report = verify(data, sets, deep=args.deep)
        print(report.summary(), file=out)
        return 0 if report.ok else 1
    else:
        print(f"wrote {write_index(data, sets)}", file=out)
    return 0


def cmd_sample_poses(args, out) -> int:
    overrides = list(args.overrides or [])
    if args.n is not None:
        overrides.append(f"poses.n={args.n}")
    if args.sources:
        overrides.append(f"poses.sources=[{args.sources}]")
    args.overrides = overrides
    cfg = _config(args)
    from synth.poses.posefile import save_poses
    from synth.poses.sources import format_report, sample_pose_set
    poses, report = sample_pose_set(cfg.poses, cfg.poses.n, seed=cfg.seed, paths=cfg.paths(),
                                    progress=not args.quiet)
    path = Path(args.out)
    save_poses(path, poses)
    save_config(cfg, path.with_suffix(".config.yaml"))
    atomic_write_json(path.with_suffix(".report.json"), report)
    print(format_report(report), file=out)
    print(f"wrote {len(poses)} poses to {path} (config: {path.with_suffix('.config.yaml')}, "
          f"report: {path.with_suffix('.report.json')})", file=out)
    return 0


def cmd_render(args, out) -> int:
    overrides = list(args.overrides or [])
    for flag, key in ((args.shards, "dataset.shards"), (args.samples_per_shard, "dataset.samples_per_shard"),
                      (args.device, "render.device"), (args.poses, "dataset.pose_file"),
                      (args.executor, "executor.kind"), (args.workers, "executor.workers"),
                      (args.cpus_per_worker, "executor.cpus_per_worker"),
                      (args.gpus_per_worker, "executor.gpus_per_worker"),
                      (args.workers_per_gpu, "executor.workers_per_gpu"),
                      (args.shard_retries, "executor.shard_retries"),
                      (args.stall_timeout, "executor.stall_timeout_s")):
        if flag is not None:
            # strings quoted: YAML would read some paths and HOST:PORT forms as other types
            overrides.append(f"{key}={json.dumps(flag) if isinstance(flag, str) else flag}")
    if args.address is not None:
        overrides.append(f"executor.address={json.dumps(args.address)}")
    args.overrides = overrides
    cfg = _config(args)
    from synth.dataset.render_job import parse_shard_selection, render_dataset
    shards = parse_shard_selection(cfg.dataset.shards, args.shard_index, args.shard_range)
    summary = render_dataset(cfg, Path(args.out), shards, progress=not args.quiet, threads=args.threads,
                             allow_version_mismatch=args.allow_version_mismatch, verify=args.verify)
    print(json.dumps(summary, indent=2), file=out)
    if summary.get("failed"):
        print(f"synth render: error: {len(summary['failed'])} shard(s) failed after retries: "
              f"{', '.join(summary['failed'])}; run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def cmd_doctor(args, out) -> int:
    cfg = _config(args)
    from synth.doctor import run_doctor
    return run_doctor(cfg, args.device, Path(args.json) if args.json else None,
                      out=lambda line: print(line, file=out, flush=True))


def cmd_check(args, out) -> int:
    from synth.dataset.verify import check_dataset
    if args.config or args.overrides:
        load_config(args.config, list(args.overrides or []))    # checked; the dataset's own dataset.json rules
    report = check_dataset(Path(args.dataset), quick=args.quick)
    lines = report.lines()
    for line in lines[:-1]:
        print(f"synth check: {line}", file=sys.stderr)
    print(lines[-1], file=out)
    return 0 if report.ok else 1


def cmd_train(args, out) -> int:
    cfg = _config(args)
    from synth.train import train_from_config
    result = train_from_config(cfg, Path(args.data) if args.data else None, Path(args.out),
                               resume=not args.no_resume)
    print(json.dumps(result, indent=2, default=str), file=out)
    return 0


def cmd_eval(args, out) -> int:
    from synth.train import evaluate, format_table
    if not args.data and not args.real:
        raise InputError("give --data DATASET and/or --real LSPDIR[:a-b]")
    run = Path(args.run)
    ckpt = run / "checkpoint.pt" if run.is_dir() else run
    out_json = Path(args.json) if args.json else (run / "eval.json" if run.is_dir() else None)
    result = evaluate(ckpt, Path(args.data) if args.data else None, out_json, device=args.device,
                      real_dirs=args.real or [], print_table=False, config=args.config,
                      overrides=list(args.overrides or []))
    print(format_table(result), file=out)
    return 0


def cmd_predict(args, out) -> int:
    from synth.train.predict import predict_photos
    result = predict_photos(Path(args.run), args.images, Path(args.out), Path(args.boxes) if args.boxes else None,
                            args.focal, args.fov, args.mesh, args.device, config=args.config,
                            overrides=list(args.overrides or []))
    n = sum(len(i["people"]) for i in result["images"])
    print(f"predicted {n} person(s) in {len(result['images'])} photo(s): {Path(args.out) / 'predictions.json'}",
          file=out)
    return 0


def cmd_dress(args, out) -> int:
    cfg = _config(args)
    from synth.textures.library import write_library
    index = write_library(cfg, Path(args.out), args.n, progress=not args.quiet)
    rejected = index.get("rejected_photos", {})
    print(json.dumps({"library": str(args.out), "n": index["n"], "written": index["written"],
                      "photos_segmented": index.get("photos_segmented"), "photos_rejected": len(rejected),
                      "summary": {**index["summary"], "time_per_body_s": index.get("time_per_body_s")}},
                     indent=2), file=out)
    return 0


def cmd_gallery(args, out) -> int:
    overrides = list(args.overrides or [])
    target = Path(args.dataset)
    if (target / "checkpoint.pt").is_file() or target.suffix == ".pt":
        from synth.gallery.predictions import write_prediction_page
        path = write_prediction_page(target, args.real, Path(args.out) if args.out else None, device=args.device,
                                     config=args.config, overrides=overrides)
        print(f"prediction gallery: {path}", file=out)
        return 0
    if args.dress:
        from synth.gallery.dressing import write_dressing_page
        path = write_dressing_page(Path(args.dataset), Path(args.out) if args.out else None,
                                   max_bodies=args.max_samples, config=args.config, overrides=overrides)
        print(f"dressing gallery: {path}", file=out)
        return 0
    if args.stats:
        from synth.gallery.stats import write_stats_page
        if args.config or overrides:
            load_config(args.config, overrides)   # checked only, as for the preview page
        path = write_stats_page(Path(args.dataset), Path(args.out) if args.out else None,
                                grid_samples=args.max_samples, seed=args.grid_seed)
        print(f"statistics page: {path}", file=out)
        return 0
    from synth.gallery import write_gallery
    if args.config or overrides:
        load_config(args.config, overrides)       # checked; a dataset's page shows its own configuration
    page = Path(args.out) if args.out else (Path(args.dataset) / "gallery" / args.page if args.page else None)
    path = write_gallery(Path(args.dataset), page, max_samples=args.max_samples)
    print(f"gallery: {path}", file=out)
    return 0


def cmd_pose_gallery(args, out) -> int:
    cfg = _config(args)
    from synth.gallery.pose_space import write_pose_space_page
    try:
        ns = tuple(int(x) for x in args.coverage_n.split(",")) if args.coverage_n else (1000, 10000, 100000)
    except ValueError:
        raise InputError(f"--coverage-n {args.coverage_n!r} is not a comma-separated list of whole numbers") from None
    for n in ns:
        if n < 1:
            raise InputError(f"--coverage-n: {n} is not a positive number of poses")
        check_count("--coverage-n", n, MAX_POSES)
    path = write_pose_space_page(cfg.poses, Path(args.out), seed=cfg.seed, paths=cfg.paths(),
                                 pose_file=Path(args.poses) if args.poses else None,
                                 tsne=not args.no_tsne, coverage_ns=ns, progress=not args.quiet)
    print(f"pose-space page: {path}", file=out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="synth", description=__doc__.splitlines()[0], formatter_class=_HelpFormatter)
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    ap.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = ap.add_subparsers(dest="command", required=True)

    def parser(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, formatter_class=_HelpFormatter, **kw)

    p = parser("assets", help="fill or check the data directory")
    p.add_argument("action", choices=["fetch", "verify", "index"],
                   help="fetch: fill the data directory; verify: check it; index: write MANIFEST.json so "
                        "that the folder can be served as a --base-url mirror")
    p.add_argument("--mirror", help="a local folder laid out like shared/data (default: config assets.mirror)")
    p.add_argument("--base-url", help="an HTTP server serving such a mirror (instead of upstream URLs)")
    p.add_argument("--sets", help=f"comma-separated asset sets (default: config assets.sets, "
                                  f"{','.join(_default('assets.sets'))})")
    p.add_argument("--link", action="store_true", help="symlink files from the mirror instead of copying")
    p.add_argument("--deep", action="store_true", help="also check md5s and decode every image")
    p.add_argument("--allow-unverified", action="store_true",
                   help="--base-url: also download index entries that give neither size nor md5 "
                        "(refused by default: nothing would tell a complete file from a broken one)")
    _common(p)
    p.set_defaults(func=cmd_assets)

    p = parser("sample-poses", help="draw poses (MoCap, lifted LSP, prior samples) into a pose file (.npz)")
    p.add_argument("--n", type=int, help=f"number of poses (default: config poses.n, {_default('poses.n')})")
    p.add_argument("--sources", help="comma-separated sources: cmu, lsp, prior (default: config poses.sources, "
                                     f"{','.join(_default('poses.sources'))}; shares: poses.mix)")
    p.add_argument("--out", required=True, help="output .npz (a .report.json and .config.yaml are written beside it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _common(p)
    p.set_defaults(func=cmd_sample_poses)

    p = parser("pose-gallery", help="write the pose-space page (embedding, sampled skeletons, coverage)")
    p.add_argument("--out", required=True, help="folder for pose_space.html")
    p.add_argument("--poses", help="a pose file from `synth sample-poses` whose report to show")
    p.add_argument("--coverage-n", default="1000,10000,100000", help="comma-separated N of the coverage table")
    p.add_argument("--no-tsne", action="store_true", help="PCA only (t-SNE takes tens of seconds)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _common(p)
    p.set_defaults(func=cmd_pose_gallery)

    p = parser("render", help="render a sharded dataset (or some of its shards)")
    p.add_argument("--out", required=True, help="dataset directory")
    p.add_argument("--shards", type=int, help=f"number of shards of the whole dataset (default: config "
                                              f"dataset.shards, {_default('dataset.shards')})")
    p.add_argument("--samples-per-shard", type=int, help=f"default: config dataset.samples_per_shard, "
                                                         f"{_default('dataset.samples_per_shard')}")
    p.add_argument("--shard-index", type=int, help="render only this shard (e.g. $SLURM_ARRAY_TASK_ID)")
    p.add_argument("--shard-range", help="render shards A..B-1, as A:B")
    p.add_argument("--poses", help="a pose file from `synth sample-poses` (default: MoCap on the fly)")
    p.add_argument("--device", choices=["cpu", "gpu"], help=f"default: config render.device, "
                                                            f"{_default('render.device')}")
    p.add_argument("--threads", type=int, default=0,
                   help="Cycles CPU threads per worker (0 = all cores / the cores of each worker)")
    p.add_argument("--executor", choices=["local", "ray"],
                   help=f"local: this machine; ray: a Ray cluster (default: config executor.kind, "
                        f"{_default('executor.kind')})")
    p.add_argument("--workers", type=int,
                   help="local: worker processes (default: render in this process); ray: at most this "
                        "many (default: one per free slot of the cluster)")
    p.add_argument("--address", help="ray: join this cluster (auto, HOST:PORT, ray://HOST:10001) "
                                     "instead of starting a local one")
    p.add_argument("--cpus-per-worker", type=float, help=f"ray: CPU cores reserved per worker (default: "
                                                         f"{_default('executor.cpus_per_worker'):g})")
    p.add_argument("--gpus-per-worker", type=float, help=f"GPUs per worker with --device gpu (default: "
                                                         f"{_default('executor.gpus_per_worker'):g})")
    p.add_argument("--workers-per-gpu", type=int, metavar="K",
                   help="with --device gpu: K worker processes share each GPU (local pool and Ray; default: "
                        "config executor.workers_per_gpu, 0 = picked from the node's cores and GPUs, and "
                        "printed)")
    p.add_argument("--shard-retries", type=int, help=f"times a failed shard is rendered again (default: "
                                                     f"{_default('executor.shard_retries')})")
    p.add_argument("--stall-timeout", type=float, metavar="SECONDS",
                   help="with --workers/--executor ray: kill a worker whose shard finishes no sample for this "
                        f"long and render the shard again (default: {_default('executor.stall_timeout_s'):g}; "
                        "0 = never)")
    p.add_argument("--allow-version-mismatch", action="store_true",
                   help="add to an output made with other software versions (synth, git commit, bpy, torch, "
                        "anny, numpy) instead of refusing")
    p.add_argument("--verify", action="store_true",
                   help="also check the sha256 of the selected complete shards against their sidecars "
                        "(their sizes are always checked) and render damaged ones again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_render)

    p = parser("doctor", help="what this node offers for rendering: Blender, Cycles' GPUs, one sample "
                              "rendered on the GPU and on the CPU, compared and timed")
    p.add_argument("--device", choices=["gpu", "cpu"],
                   help="gpu: fail (one line, exit 2) unless Cycles sees a GPU; cpu: render on the CPU only "
                        "(default: the GPU too when there is one)")
    p.add_argument("--json", help="also write the report to this file")
    _common(p)
    p.epilog = ("The sample is the configuration's first (render.image_size, render.samples and render.cycles.* "
                "apply). Exit 1 when the GPU render does not match the CPU render.")
    p.set_defaults(func=cmd_doctor)

    p = parser("check", help="check every shard of a rendered dataset: size and sha256 against its sidecar, a "
                             "readable tar with every sample's members (exit 1 if any is damaged or missing)")
    p.add_argument("dataset", help="dataset directory from `synth render`")
    p.add_argument("--quick", action="store_true", help="sizes and sidecars only (reads no tar)")
    _config_args(p)
    p.epilog = "The dataset is checked against its own dataset.json; --config and key=value overrides are only checked."
    p.set_defaults(func=cmd_check)

    p = parser("train", help="train a 3D pose network on rendered shards (or, with train.data_source=real, on "
                              "real photos' 2D labels)")
    p.add_argument("--data", help="dataset directory from `synth render` (not with train.data_source=real)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    _common(p)
    p.set_defaults(func=cmd_train)

    p = parser("eval", help="evaluate a trained run: held-out shards (3D) and LSP-format photos (PCK@0.2)")
    p.add_argument("--run", required=True, help="run directory or checkpoint file")
    p.add_argument("--data", help="dataset directory (3D metrics on its held-out shards)")
    p.add_argument("--real", action="append", metavar="LSPDIR[:a-b]",
                   help="an LSP-format folder, optionally images a..b (1-based); repeatable")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="torch device")
    p.add_argument("--json", help="write the figures here (default: RUN/eval.json)")
    _config_args(p)
    p.epilog = ("--config and key=value overrides apply over the checkpoint's own configuration "
                "(e.g. train.batch_size=8 train.workers=0).")
    p.set_defaults(func=cmd_eval)

    p = parser("predict", help="apply a trained run to photos: 2D and 3D joints, global pose, overlays, "
                                "optionally the fitted body (--mesh)")
    p.add_argument("--run", required=True, help="run directory or checkpoint file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos and/or folders of photos")
    p.add_argument("--out", required=True, help="output folder (predictions.json, overlays/, meshes/)")
    p.add_argument("--boxes", help="JSON {photo name: [[x0, y0, x1, y1], ...]}; default: the whole photo "
                                   "padded to a square")
    p.add_argument("--focal", type=float, help="focal length in pixels (default: from --fov)")
    p.add_argument("--fov", type=float, default=PHOTO_FOV_DEG,
                   help="assumed horizontal field of view in degrees, without --focal")
    p.add_argument("--mesh", action="store_true", help="fit the Anny body to each pose: .obj + overlay")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="torch device")
    _config_args(p)
    p.epilog = ("--config and key=value overrides apply over the checkpoint's own configuration, as with "
                "`synth eval`.")
    p.set_defaults(func=cmd_predict)

    p = parser("gallery", help="write a static HTML preview of a dataset, or of a trained run's predictions on "
                                "real photos")
    p.add_argument("dataset", help="dataset directory; or a run directory (with checkpoint.pt): its predictions on "
                                   "the evaluation photos, RUN/gallery/predictions.html")
    p.add_argument("--real", metavar="LSPDIR[:a-b]", help="run page: the photos (default: the run's "
                                                          "train.real folder and eval_range)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="run page: where to predict")
    p.add_argument("--out", help="HTML file (default: DATASET/gallery/index.html)")
    p.add_argument("--max-samples", type=int, default=64, help="samples (or, with --dress, bodies) shown")
    p.add_argument("--page", help="page name inside DATASET/gallery/ (default: index.html)")
    p.add_argument("--dress", action="store_true",
                   help="DATASET is a `synth dress` library: write its dressing page (photo, mask, matched "
                        "contours, warp, renders front/side/back) to LIBRARY/gallery/dressing.html")
    p.add_argument("--stats", action="store_true",
                   help="write the dataset's statistics page (clipped highlights, person size and position, "
                        "truncation, occluders, outfit/hair/shoe/photo use, a random grid from all shards, "
                        "layers) to DATASET/gallery/stats.html; --max-samples sets the grid size")
    p.add_argument("--grid-seed", type=int, default=0, help="--stats: the seed of the random grid's draw")
    _config_args(p)
    p.epilog = ("With --dress, --config and key=value overrides apply over the library's config.yaml "
                "(e.g. data_dir=... where the garment photos are on this machine); for a run, over its "
                "checkpoint's configuration (e.g. data_dir=... where LSP is on this machine); a dataset's page "
                "shows the dataset's own configuration, and they are only checked.")
    p.set_defaults(func=cmd_gallery)

    p = parser("dress", help="write a library of dressed-body textures from garment photos")
    p.add_argument("--n", type=int, required=True, help="number of dressed-body textures")
    p.add_argument("--out", required=True, help="library folder (resumes: complete entries are kept)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_dress)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may stand anywhere after the subcommand (argparse would otherwise give
    # them to the first positional argument only)
    args, extra = parser.parse_known_args(argv)
    unknown = [x for x in extra if x.startswith("-") or "=" not in x]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = list(args.overrides or []) + extra
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # reported-and-skipped input problems (e.g. a bad MoCap clip) print as one line each
    warnings.formatwarning = lambda msg, cat, *a, **k: f"synth {args.command}: warning: {msg}\n"
    warnings.simplefilter("always", UserWarning)   # every skipped file, not only the first
    results = sys.stdout
    try:
        # stdout is the result's: whatever else prints there while the command runs (Warp's
        # banner when Anny starts, other libraries' notices) goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            return args.func(args, results)
    except KeyboardInterrupt:
        print(f"synth {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every fault ends in one line (the traceback too with --debug)
        message, code = error_line(e)
        if args.debug:
            traceback.print_exc()
        elif code == 1 and not isinstance(e, (OSError, MemoryError)):    # unforeseen: say where to look
            message += " (run with --debug for the traceback)"
        print(f"synth {args.command}: error: {message}", file=sys.stderr)
        return code
    finally:
        try:
            results.flush()
        except OSError:         # stdout closed or on a full disk: the error line above is what counts
            pass


def error_line(e: BaseException) -> tuple[str, int]:
    """The one-line message of a fault at the command boundary and the exit status: 2 for bad
    input or configuration, 1 for operating-system faults (a read-only or full disk, ...), decoder
    faults and anything unforeseen. OS faults name the file or directory."""
    if isinstance(e, (ConfigError, InputError, BodyModelError)):
        return one_line(str(e)), 2
    if isinstance(e, OSError):
        what = e.strerror or str(e) or e.__class__.__name__
        if e.filename is not None and e.filename2 is not None:
            return one_line(f"{e.filename} -> {e.filename2}: {what}"), 1
        if e.filename is not None:
            return one_line(f"{e.filename}: {what}"), 1
        return one_line(f"{e.__class__.__name__}: {what}"), 1
    if isinstance(e, MemoryError):
        return "out of memory (MemoryError)", 1
    return one_line(f"{e.__class__.__name__}: {e}" if str(e) else e.__class__.__name__), 1


def one_line(text: str, limit: int = 500) -> str:
    """`text` as one line of at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
