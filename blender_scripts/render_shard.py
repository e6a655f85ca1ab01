"""Render-farm entry point: `synth render` inside a stand-alone Blender, no pip needed for synth.

    blender -b --python-exit-code 1 --python blender_scripts/render_shard.py -- \
        --out /shared/ds --shards 500 --shard-index $SLURM_ARRAY_TASK_ID --device gpu

Everything after `--` is what `synth render` takes (a leading `render` is allowed). The script
puts this checkout's root on sys.path and runs the same package code as the `synth` command, so a
shard rendered here equals one rendered by `synth render`. The same script also runs under a
plain Python with the `bpy` module (`python blender_scripts/render_shard.py -- ...`); the tests
run it that way.

Blender's bundled Python has numpy but not the other packages the render path imports (pyyaml,
tqdm, pillow, opencv-python-headless, scipy, torch and anny for the body model); README.md
("Rendering at scale") shows how to install them into it. One Blender renders its shards in its
own process: use --shard-index/--shard-range (job arrays) rather than --workers or --executor ray.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def synth_args(argv: list[str]) -> list[str]:
    """The arguments after the first `--` (Blender's own come before it), without a leading
    `render`; all of argv[1:] when there is no `--` (plain python)."""
    args = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    if args and args[0] == "render":
        args = args[1:]
    return args


def main(argv: list[str]) -> int:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from synth.cli import main as synth_main
    except ImportError as e:
        print(f"render_shard.py: error: cannot import synth from {REPO_ROOT} ({e}); install the "
              "render dependencies into this Python (see README.md, Rendering at scale)", file=sys.stderr)
        return 2
    return synth_main(["render", *synth_args(argv)])


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Blender keeps running after a --python script unless told to exit
    sys.exit(code)
