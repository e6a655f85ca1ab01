"""Rendered datasets: scene sampling, shard writing and resume (`synth render`), and reading them.

    from synth.dataset import open_webdataset, open_wids, render_dataset

`open_webdataset(OUT)` / `open_wids(OUT)` (synth.dataset.readers) give depth in millimetres and
part ids as SPEC.md defines them; `render_dataset(cfg, OUT)` (synth.dataset.render_job) renders.
The names are imported on first use, so `import synth.dataset.shards` stays light.
"""
_NAMES = {"open_webdataset": "synth.dataset.readers", "open_wids": "synth.dataset.readers",
          "decode_sample": "synth.dataset.readers", "decode_member": "synth.dataset.readers",
          "render_dataset": "synth.dataset.render_job"}

__all__ = list(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        import importlib    # the render path loads Blender-side and torch-side modules: deferred
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'synth.dataset' has no attribute {name!r}")
