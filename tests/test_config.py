"""The typed configuration (synth/config.py): defaults generated from the models, validation from
the types, one-line errors naming the key."""
from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from synth.config import (DEFAULTS_PATH, Config, ConfigError, Range, RenderConfig, TrainConfig, defaults_yaml,
                          load_config, save_config, yaml_load)


def test_defaults_yaml_is_generated_from_the_models():
    assert DEFAULTS_PATH.read_text(encoding="utf-8") == defaults_yaml(), \
        "synth/defaults.yaml is stale: run `python -m synth.config --write-defaults`"
    # and it reads back as the models' defaults, comments and all
    assert Config.model_validate(yaml_load(defaults_yaml())) == Config()
    r = subprocess.run([sys.executable, "-m", "synth.config", "--check-defaults"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_key_has_a_description_in_defaults_yaml():
    """Each leaf key carries its comment (the field's description), except the phenotype entries
    whose section says it all."""
    lines = [line for line in defaults_yaml().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    leaves = [line for line in lines if not line.rstrip().endswith(":")]
    bare = [line.strip() for line in leaves if "  # " not in line]
    phenotype = {"gender", "muscle", "weight", "height", "proportions"}
    assert [b for b in bare if b.split(":")[0] not in phenotype] == []


def test_yaml_1_2_floats_parse_as_numbers(tmp_path):
    assert load_config(None, ["train.lr=1e-3"]).train.lr == 0.001
    assert load_config(None, ["train.lr=2E-4"]).train.lr == 0.0002
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 5e-4\n  weight_decay: 1.0e-5\n")
    cfg = load_config(f)
    assert cfg.train.lr == 0.0005 and cfg.train.weight_decay == 1e-5


@pytest.mark.parametrize("value", ["1.5", "2.5", "2.0", "'3'", "true"])
def test_integer_keys_take_integers_only(value):
    with pytest.raises(ConfigError, match=r"config key 'render\.samples' must be an integer"):
        load_config(None, [f"render.samples={value}"])
    with pytest.raises(ConfigError, match=r"config key 'dataset\.shards' must be an integer"):
        load_config(None, [f"dataset.shards={value}"])


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_floats_must_be_finite(value):
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"render.camera.roll_std_deg={value}"])
    shown = {".nan": "nan", ".inf": "inf", "-.inf": "-inf"}[value]
    assert str(e.value).endswith(f"config key 'render.camera.roll_std_deg' must be a finite number, got {shown}")


def test_errors_are_one_line_naming_the_key_and_the_source(tmp_path):
    f = tmp_path / "user.yaml"
    f.write_text("render:\n  camera:\n    fov_deg: {low: 60, high: 50}\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value) == (f"{f}: config key 'render.camera.fov_deg' need 5 <= low <= high <= 120, got 60, 50")
    with pytest.raises(ConfigError, match=r"^override 'train\.augment\.roation_deg=3': unknown config key "
                                          r"'train\.augment\.roation_deg'$"):
        load_config(None, ["train.augment.roation_deg=3"])
    with pytest.raises(ConfigError, match=r"config key 'render\.image_format' must be 'jpg' or 'png', got 'tif'"):
        load_config(None, ["render.image_format=tif"])
    with pytest.raises(ConfigError, match=r"config key 'render\.image_size\[1\]' = 8 is out of range \(must be >= 16\)"):
        load_config(None, ["render.image_size=[64, 8]"])
    with pytest.raises(ConfigError, match=r"config key 'body\.phenotype\.age\.high' is missing"):
        load_config(None, ["body.phenotype.age.low=0.2"])    # a distribution is replaced whole
    with pytest.raises(ConfigError, match=r"config key 'textures\.library' must name a `synth dress` folder"):
        load_config(None, ["render.clothing.mode=library"])
    assert load_config(None, ["render.clothing.mode=library", "textures.library=lib"]).textures.library == "lib"


def test_a_huge_value_is_not_echoed():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["render.image_format=" + "x" * 5_000_000])
    assert len(str(e.value)) < 400 and "..." in str(e.value) and "\n" not in str(e.value)


def test_counts_have_upper_bounds_named_with_their_key():
    """The count keys of synth/limits.py are capped by their models (and in the JSON schema)."""
    from synth.limits import MAX_POSES, MAX_PRIOR_BATCH, MAX_SAMPLES_PER_SHARD, MAX_SHARDS
    caps = {"poses.n": MAX_POSES, "poses.prior.batch": MAX_PRIOR_BATCH, "dataset.shards": MAX_SHARDS,
            "dataset.samples_per_shard": MAX_SAMPLES_PER_SHARD}
    for key, cap in caps.items():
        node = load_config(None, [f"{key}={cap}"])
        for part in key.split("."):
            node = getattr(node, part)
        assert node == cap
        with pytest.raises(ConfigError) as e:
            load_config(None, [f"{key}={cap + 1}"])
        assert str(e.value) == (f"override '{key}={cap + 1}': config key '{key}' = {cap + 1} is above the limit "
                                f"of {cap} (see README.md, Limits)")
    schema = Config.model_json_schema()["$defs"]["DatasetConfig"]["properties"]
    assert schema["shards"]["maximum"] == MAX_SHARDS and schema["shards"]["minimum"] == 1


def test_a_value_that_aliases_expand_a_billion_times_is_refused_at_once(tmp_path):
    """Ten nested levels of ten aliases load as a few nodes; the error quotes the value cut short
    (its full repr would be gigabytes)."""
    import time
    lines = ["anchors:", "  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines + ["poses:", "  subjects: *a9", ""]))
    t0 = time.process_time()
    with pytest.raises(ConfigError) as e:
        load_config(bomb)
    assert time.process_time() - t0 < 5.0
    assert str(e.value).startswith(f"{bomb}: ") and len(str(e.value)) < 300 and "\n" not in str(e.value)


def test_file_faults_are_one_line_naming_the_file(tmp_path):
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes("render:\n  engine: CYCL\xc9S\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml: not UTF-8 text \(byte \d+\)$"):
        load_config(binary)
    with pytest.raises(ConfigError, match=r"nothere\.yaml: config file not found"):
        load_config(tmp_path / "nothere.yaml")
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: top level must be a mapping"):
        load_config(top)


def test_sections_are_valid_alone_and_assignment_is_checked():
    assert TrainConfig().lr == 0.001 and TrainConfig(lr=1e-4).lr == 1e-4
    assert RenderConfig().width == 256
    t = TrainConfig()
    with pytest.raises(ValidationError):
        t.epochs = 2.5
    with pytest.raises(ValidationError):
        Range(low=float("nan"), high=1.0)
    with pytest.raises(ValidationError):
        TrainConfig(unknown=1)


def test_resolved_config_round_trips_and_has_a_schema(tmp_path):
    cfg = load_config(None, ["seed=5", "render.samples=4", "poses.subjects=['16', 49]", "train.lr=3e-4"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    schema = Config.model_json_schema()
    assert schema["additionalProperties"] is False and "render" in schema["properties"]
    # a stored configuration (e.g. a checkpoint's) is a base for further overrides
    again = load_config(None, ["train.epochs=9"], base=cfg.model_dump(mode="json"))
    assert again.train.epochs == 9 and again.seed == 5 and again.train.lr == 3e-4
