"""`synth`: a thin command line over the stages (assets, sample-poses, render, train, eval, gallery).

Every subcommand takes `--config FILE` and trailing `key.sub=value` overrides of the one
configuration (synth/defaults.yaml). Errors in input or configuration print one line and exit 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from synth.config import ConfigError, cache_dir, data_dir, dump, load_config
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
    from synth.poses.posefile import save_poses
    from synth.poses.sampling import sample_poses
    pc = cfg["poses"]
    rng = np.random.default_rng(cfg["seed"])
    poses = sample_poses(data_dir(cfg), pc["n"], rng, subjects=pc["subjects"], fps=pc["fps"],
                         min_distance=pc["min_pose_distance"], cache_dir=cache_dir(cfg) / "poses")
    out = Path(args.out)
    save_poses(out, poses)
    dump(cfg, out.with_suffix(".config.yaml"))
    print(f"wrote {len(poses)} poses to {out} (config: {out.with_suffix('.config.yaml')})")
    return 0


def cmd_render(args) -> int:
    overrides = list(args.overrides or [])
    for flag, key in ((args.shards, "dataset.shards"), (args.samples_per_shard, "dataset.samples_per_shard"),
                      (args.device, "render.device"), (args.poses, "dataset.pose_file")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    args.overrides = overrides
    cfg = _config(args)
    from synth.dataset.render_job import parse_shard_selection, render_dataset
    shards = parse_shard_selection(cfg["dataset"]["shards"], args.shard_index, args.shard_range)
    summary = render_dataset(cfg, Path(args.out), shards, progress=not args.quiet, threads=args.threads)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_train(args) -> int:
    cfg = _config(args)
    from synth.train import train
    result = train(cfg, Path(args.data), Path(args.out), resume=not args.no_resume)
    print(json.dumps(result, indent=2, default=str))
    return 0


def cmd_eval(args) -> int:
    from synth.train import evaluate
    run = Path(args.run)
    ckpt = run / "checkpoint.pt" if run.is_dir() else run
    out_json = Path(args.json) if args.json else (run / "eval.json" if run.is_dir() else None)
    evaluate(ckpt, Path(args.data), out_json)
    return 0


def cmd_gallery(args) -> int:
    from synth.gallery import write_gallery
    out = Path(args.out) if args.out else (Path(args.dataset) / "gallery" / args.page if args.page else None)
    path = write_gallery(Path(args.dataset), out, max_samples=args.max_samples)
    print(f"gallery: {path}")
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

    p = sub.add_parser("sample-poses", help="draw MoCap poses into a pose file (.npz)")
    p.add_argument("--n", type=int, help="number of poses (config poses.n)")
    p.add_argument("--sources", help="comma-separated sources (available: cmu)")
    p.add_argument("--out", required=True, help="output .npz")
    _common(p)
    p.set_defaults(func=cmd_sample_poses)

    p = sub.add_parser("render", help="render a sharded dataset (or some of its shards)")
    p.add_argument("--out", required=True, help="dataset directory")
    p.add_argument("--shards", type=int, help="number of shards of the whole dataset")
    p.add_argument("--samples-per-shard", type=int)
    p.add_argument("--shard-index", type=int, help="render only this shard (e.g. $SLURM_ARRAY_TASK_ID)")
    p.add_argument("--shard-range", help="render shards A..B-1, as A:B")
    p.add_argument("--poses", help="a pose file from `synth sample-poses` (default: MoCap on the fly)")
    p.add_argument("--device", choices=["cpu", "gpu"])
    p.add_argument("--threads", type=int, default=0, help="Cycles CPU threads (0 = all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("train", help="train a 3D pose network on rendered shards")
    p.add_argument("--data", required=True, help="dataset directory from `synth render`")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained run on the held-out shards")
    p.add_argument("--run", required=True, help="run directory or checkpoint file")
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--json", help="write the figures here (default: RUN/eval.json)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("gallery", help="write a static HTML preview of a dataset")
    p.add_argument("dataset", help="dataset directory")
    p.add_argument("--out", help="HTML file (default: DATASET/gallery/index.html)")
    p.add_argument("--max-samples", type=int, default=64)
    p.add_argument("--page", help="page name inside DATASET/gallery/ (default index.html)")
    p.set_defaults(func=cmd_gallery)
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
