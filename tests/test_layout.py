"""The package's structure: no import circles (function-local imports counted too), bpy only in
synth/render, and random streams that never meet."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from synth.rng import Stream, stream, torch_seed

PACKAGE = Path(__file__).resolve().parents[1] / "synth"


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _import_graph() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """synth module -> the synth modules it imports anywhere (top level or inside a function), and
    module -> every module name it imports."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in mods:
                return ".".join(parts)
            parts.pop()
        return None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    names: dict[str, list[str]] = {m: [] for m in mods}
    for m, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".")[: len(m.split(".")) - node.level + (1 if is_pkg else 0)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # `from pkg import submodule` imports the submodule; `from mod import name` the module
                targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod for a in node.names]
            else:
                continue
            names[m].extend(targets)
            for t in targets:
                r = resolve(t)
                if r is not None and r != m:
                    edges[m].add(r)
    return edges, names


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    edges, _ = _import_graph()
    assert len(edges) > 60                     # the walk found the package
    assert _cycles(edges) == []


def test_only_synth_render_imports_bpy():
    _, names = _import_graph()
    users = sorted(m for m, ns in names.items() if any(n == "bpy" or n.startswith(("bpy.", "mathutils")) for n in ns))
    assert users and all(m.startswith("synth.render") for m in users), users


def _first_draws(rng: np.random.Generator) -> tuple:
    return tuple(rng.integers(0, 2 ** 63, 4).tolist())


def test_random_streams_never_meet():
    """Every stage's stream of one seed differs from every other's: the streams the issue found
    shared under plain `default_rng([seed, ...])` (texture library entry i and render shard 4 /
    sample i; the prior's fit and shard 7 / sample 0; pose sampling and shard 0 / sample 0), a
    trailing zero index, and the same indices under every tag."""
    from synth.dataset.scene_sampler import dressing_rng, sample_rng
    from synth.textures.library import entry_rng

    seed = 0
    draws: dict[tuple, tuple] = {}      # (tag, indices...) -> first draws

    def key(tag: Stream, *indices: int) -> None:
        draws.setdefault((tag, *indices), _first_draws(stream(seed, tag, *indices)))

    # the stages' own helpers are the streams of their keys
    for shard, i, attempt in [(0, 0, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1), (4, 3, 0), (7, 0, 0), (0, 0, 0)]:
        key(Stream.RENDER_SAMPLE, shard, i, attempt)
        assert _first_draws(sample_rng(seed, shard, i, attempt)) == draws[(Stream.RENDER_SAMPLE, shard, i, attempt)]
    for shard, i, attempt in [(0, 0, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1), (4, 3, 0)]:
        key(Stream.MESH_DRESSING, shard, i, attempt)
        assert _first_draws(dressing_rng(seed, shard, i, attempt)) == draws[(Stream.MESH_DRESSING, shard, i, attempt)]
    for i in range(4):
        key(Stream.TEXTURE_LIBRARY, i)
        assert _first_draws(entry_rng(seed, i)) == draws[(Stream.TEXTURE_LIBRARY, i)]
    key(Stream.POSE_SAMPLING)
    key(Stream.PRIOR_FIT)
    key(Stream.LIFTER_TRAIN, 0)
    for net in (1, 2):
        for part in (0, 1, 2):
            key(Stream.LIFTER_TRAIN, net, part)
    key(Stream.LIFTER_EVAL)
    for domain in (0, 1):
        for epoch in (0, 1):
            for item in (0, 1):
                key(Stream.TRAIN_AUGMENT, domain, epoch, item)
    from synth.config import AppearanceConfig
    from synth.train.appearance import AppearanceAugmenter
    appearance = AppearanceAugmenter(AppearanceConfig(), [], Path("."), seed)
    for epoch in (0, 1):
        for item in (0, 1):
            key(Stream.TRAIN_APPEARANCE, epoch, item)
            assert _first_draws(appearance.item_rng(epoch, item)) == draws[(Stream.TRAIN_APPEARANCE, epoch, item)]
    # the same indices under every tag, with and without a trailing zero
    for tag in Stream:
        for indices in [(), (0,), (0, 0), (3,), (3, 0), (4, 3), (4, 3, 0), (7,), (7, 0)]:
            key(tag, *indices)
    values = list(draws.values())
    assert len(set(values)) == len(values), "two streams meet"
    # another seed moves every stream
    assert _first_draws(stream(1, Stream.RENDER_SAMPLE, 0, 0, 0)) != draws[(Stream.RENDER_SAMPLE, 0, 0, 0)]
    # plain numpy shows why the tags and spawn keys are needed
    assert _first_draws(np.random.default_rng([seed, 4, 3])) == _first_draws(np.random.default_rng([seed, 4, 3, 0]))
    assert torch_seed(seed, Stream.TRAIN_INIT) == torch_seed(seed, Stream.TRAIN_INIT)
    assert torch_seed(seed, Stream.TRAIN_ORDER, 0) != torch_seed(seed, Stream.TRAIN_ORDER, 1)


def test_stream_tags_are_distinct_and_indices_are_single_words():
    import pytest
    assert len({int(t) for t in Stream}) == len(Stream)
    with pytest.raises(ValueError, match="outside"):
        stream(0, Stream.RENDER_SAMPLE, 2 ** 32)
