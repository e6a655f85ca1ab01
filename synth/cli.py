"""`synth`: a thin command line over the stages (assets, sample-poses, render, train, eval, gallery).

Every subcommand takes `--config FILE` and trailing `key.sub=value` overrides of the one
configuration (synth/defaults.yaml). Errors in input or configuration print one line and exit 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from synth.config import ConfigError, data_dir, dump, load_config
from synth.io_utils import InputError
from synth.body.model import BodyModelError


def _config(args) -> dict:
    overrides = list(args.overrides or [])
    if getattr(args, "seed", None) is not None:
        overrides.append(f"seed={args.seed}")
    if getattr(args, "data_dir", None) is not None:
        overrides.append(f"data_dir={args.data_dir}")
    return load_config(args.config, overrides)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file with overrides of synth/defaults.yaml")
    p.add_argument("--seed", type=int, help="shortcut for seed=N")
    p.add_argument("--data-dir", help="data directory (default: config data_dir or $SYNTH_DATA)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. render.samples=32")


def cmd_assets(args) -> int:
    cfg = _config(args)
    from synth.assets import fetch, verify, write_index
    sets = args.sets.split(",") if args.sets else cfg["assets"]["sets"]
    if args.action == "fetch":
        result = fetch(cfg, sets=sets, mirror=Path(args.mirror) if args.mirror else None,
                       base_url=args.base_url, link=args.link, deep_verify=args.deep)
        print(result.summary())
    elif args.action == "verify":
        report = verify(data_dir(cfg), sets, deep=args.deep)
        print(report.summary())
        return 0 if report.ok else 1
    else:
        print(f"wrote {write_index(data_dir(cfg), sets)}")
    return 0


def cmd_sample_poses(args) -> int:
    overrides = list(args.overrides or [])
    if args.n is not None:
        overrides.append(f"poses.n={args.n}")
    if args.sources:
        overrides.append(f"poses.sources=[{args.sources}]")
    args.overrides = overrides
    cfg = _config(args)
    import numpy as np
    from synth.io_utils import atomic_write_json
    from synth.poses.posefile import save_poses
    from synth.poses.sources import format_report, sample_pose_set
    rng = np.random.default_rng(cfg["seed"])
    poses, report = sample_pose_set(cfg, cfg["poses"]["n"], rng, progress=not args.quiet)
    out = Path(args.out)
    save_poses(out, poses)
    dump(cfg, out.with_suffix(".config.yaml"))
    atomic_write_json(out.with_suffix(".report.json"), report)
    print(format_report(report))
    print(f"wrote {len(poses)} poses to {out} (config: {out.with_suffix('.config.yaml')}, "
          f"report: {out.with_suffix('.report.json')})")
    return 0


def cmd_render(args) -> int:
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
            overrides.append(f"{key}={flag}")
    if args.address is not None:   # quoted: YAML would read some HOST:PORT forms as numbers
        overrides.append(f"executor.address={json.dumps(args.address)}")
    args.overrides = overrides
    cfg = _config(args)
    from synth.dataset.render_job import parse_shard_selection, render_dataset
    shards = parse_shard_selection(cfg["dataset"]["shards"], args.shard_index, args.shard_range)
    summary = render_dataset(cfg, Path(args.out), shards, progress=not args.quiet, threads=args.threads)
    print(json.dumps(summary, indent=2))
    if summary.get("failed"):
        print(f"synth render: error: {len(summary['failed'])} shard(s) failed after retries: "
              f"{', '.join(summary['failed'])}; run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def cmd_doctor(args) -> int:
    cfg = _config(args)
    from synth.doctor import run_doctor
    return run_doctor(cfg, args.device, Path(args.json) if args.json else None)


def cmd_train(args) -> int:
    cfg = _config(args)
    from synth.train import train
    result = train(cfg, Path(args.data), Path(args.out), resume=not args.no_resume)
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_eval(args) -> int:
    from synth.train import evaluate
    if not args.data and not args.real:
        raise InputError("synth eval: give --data DATASET and/or --real LSPDIR[:a-b]")
    run = Path(args.run)
    ckpt = run / "checkpoint.pt" if run.is_dir() else run
    out_json = Path(args.json) if args.json else (run / "eval.json" if run.is_dir() else None)
    evaluate(ckpt, Path(args.data) if args.data else None, out_json, device=args.device,
             real_dirs=args.real or [])
    return 0


def cmd_dress(args) -> int:
    cfg = _config(args)
    from synth.textures.library import write_library
    index = write_library(cfg, Path(args.out), args.n, progress=not args.quiet)
    rejected = index.get("rejected_photos", {})
    print(json.dumps({"library": str(args.out), "n": index["n"], "written": index["written"],
                      "photos_segmented": index.get("photos_segmented"), "photos_rejected": len(rejected),
                      "summary": index["summary"]}, indent=2))
    return 0


def cmd_gallery(args) -> int:
    if args.dress:
        from synth.gallery.dressing import write_dressing_page
        path = write_dressing_page(Path(args.dataset), Path(args.out) if args.out else None,
                                   max_bodies=args.max_samples)
        print(f"dressing gallery: {path}")
        return 0
    from synth.gallery import write_gallery
    out = Path(args.out) if args.out else (Path(args.dataset) / "gallery" / args.page if args.page else None)
    path = write_gallery(Path(args.dataset), out, max_samples=args.max_samples)
    print(f"gallery: {path}")
    return 0


def cmd_pose_gallery(args) -> int:
    cfg = _config(args)
    from synth.gallery.pose_space import write_pose_space_page
    ns = tuple(int(x) for x in args.coverage_n.split(",")) if args.coverage_n else (1000, 10000, 100000)
    path = write_pose_space_page(cfg, Path(args.out), Path(args.poses) if args.poses else None,
                                 tsne=not args.no_tsne, coverage_ns=ns, progress=not args.quiet)
    print(f"pose-space page: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="synth", description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("assets", help="fill or check the data directory")
    p.add_argument("action", choices=["fetch", "verify", "index"],
                   help="fetch: fill the data directory; verify: check it; index: write MANIFEST.json so "
                        "that the folder can be served as a --base-url mirror")
    p.add_argument("--mirror", help="a local folder laid out like shared/data")
    p.add_argument("--base-url", help="an HTTP server serving such a mirror (instead of upstream URLs)")
    p.add_argument("--sets", help="comma-separated asset sets (default: config assets.sets)")
    p.add_argument("--link", action="store_true", help="symlink files from the mirror instead of copying")
    p.add_argument("--deep", action="store_true", help="also check md5s and decode every image")
    _common(p)
    p.set_defaults(func=cmd_assets)

    p = sub.add_parser("sample-poses", help="draw poses (MoCap, lifted LSP, prior samples) into a pose file (.npz)")
    p.add_argument("--n", type=int, help="number of poses (config poses.n)")
    p.add_argument("--sources", help="comma-separated sources: cmu, lsp, prior (config poses.sources; "
                                     "shares: poses.mix)")
    p.add_argument("--out", required=True, help="output .npz (a .report.json and .config.yaml are written beside it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _common(p)
    p.set_defaults(func=cmd_sample_poses)

    p = sub.add_parser("pose-gallery", help="write the pose-space page (embedding, sampled skeletons, coverage)")
    p.add_argument("--out", required=True, help="folder for pose_space.html")
    p.add_argument("--poses", help="a pose file from `synth sample-poses` whose report to show")
    p.add_argument("--coverage-n", help="comma-separated N of the coverage table (default 1000,10000,100000)")
    p.add_argument("--no-tsne", action="store_true", help="PCA only (t-SNE takes tens of seconds)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _common(p)
    p.set_defaults(func=cmd_pose_gallery)

    p = sub.add_parser("render", help="render a sharded dataset (or some of its shards)")
    p.add_argument("--out", required=True, help="dataset directory")
    p.add_argument("--shards", type=int, help="number of shards of the whole dataset")
    p.add_argument("--samples-per-shard", type=int)
    p.add_argument("--shard-index", type=int, help="render only this shard (e.g. $SLURM_ARRAY_TASK_ID)")
    p.add_argument("--shard-range", help="render shards A..B-1, as A:B")
    p.add_argument("--poses", help="a pose file from `synth sample-poses` (default: MoCap on the fly)")
    p.add_argument("--device", choices=["cpu", "gpu"])
    p.add_argument("--threads", type=int, default=0,
                   help="Cycles CPU threads per worker (0 = all cores / the cores of each worker)")
    p.add_argument("--executor", choices=["local", "ray"],
                   help="local: this machine (config executor.kind); ray: a Ray cluster")
    p.add_argument("--workers", type=int,
                   help="local: worker processes (default: render in this process); ray: at most this "
                        "many (default: one per free slot of the cluster)")
    p.add_argument("--address", help="ray: join this cluster (auto, HOST:PORT, ray://HOST:10001) "
                                     "instead of starting a local one")
    p.add_argument("--cpus-per-worker", type=float, help="ray: CPU cores reserved per worker")
    p.add_argument("--gpus-per-worker", type=float, help="GPUs per worker with --device gpu (default 1)")
    p.add_argument("--workers-per-gpu", type=int, metavar="K",
                   help="with --device gpu: K worker processes share each GPU (local pool and Ray; default: "
                        "picked from the node's cores and GPUs, and printed)")
    p.add_argument("--shard-retries", type=int, help="times a failed shard is rendered again (default 2)")
    p.add_argument("--stall-timeout", type=float, metavar="SECONDS",
                   help="with --workers/--executor ray: kill a worker whose shard finishes no sample for this "
                        "long and render the shard again (default 900; 0 = never)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("doctor", help="what this node offers for rendering: Blender, Cycles' GPUs, one sample "
                                      "rendered on the GPU and on the CPU, compared and timed")
    p.add_argument("--device", choices=["gpu", "cpu"],
                   help="gpu: fail (one line, exit 2) unless Cycles sees a GPU; cpu: render on the CPU only "
                        "(default: the GPU too when there is one)")
    p.add_argument("--json", help="also write the report to this file")
    _common(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("train", help="train a 3D pose network on rendered shards")
    p.add_argument("--data", required=True, help="dataset directory from `synth render`")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained run: held-out shards (3D) and LSP-format photos (PCK@0.2)")
    p.add_argument("--run", required=True, help="run directory or checkpoint file")
    p.add_argument("--data", help="dataset directory (3D metrics on its held-out shards)")
    p.add_argument("--real", action="append", metavar="LSPDIR[:a-b]",
                   help="an LSP-format folder, optionally images a..b (1-based); repeatable")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--json", help="write the figures here (default: RUN/eval.json)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("gallery", help="write a static HTML preview of a dataset")
    p.add_argument("dataset", help="dataset directory")
    p.add_argument("--out", help="HTML file (default: DATASET/gallery/index.html)")
    p.add_argument("--max-samples", type=int, default=64)
    p.add_argument("--page", help="page name inside DATASET/gallery/ (default index.html)")
    p.add_argument("--dress", action="store_true",
                   help="DATASET is a `synth dress` library: write its dressing page (photo, mask, matched "
                        "contours, warp, renders front/side/back) to LIBRARY/gallery/dressing.html")
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("dress", help="write a library of dressed-body textures from garment photos")
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
        if not hasattr(args, "overrides"):
            parser.error(f"{args.command} takes no key=value overrides: {' '.join(extra)}")
        args.overrides = list(args.overrides or []) + extra
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # reported-and-skipped input problems (e.g. a bad MoCap clip) print as one line each
    warnings.formatwarning = lambda msg, cat, *a, **k: f"synth {args.command}: warning: {msg}\n"
    warnings.simplefilter("always", UserWarning)   # every skipped file, not only the first
    try:
        return args.func(args)
    except (ConfigError, InputError, BodyModelError) as e:
        print(f"synth {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synth {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
