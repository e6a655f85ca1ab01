"""The body-model interface and the per-sample phenotype distribution."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import yaml

from synth.config import Phenotype
from synth.resources import read_data_text
from synth.scene import JOINTS, PART_IDS, RIG_BONES, BodyMesh

RIG_MAP = "cmu_mb_parts.yaml"      # package data (synth/data)

# The bones of Anny's `cmu_mb` rig, which is also the bone set a pose carries (synth.poses).
POSE_BONES = RIG_BONES


class BodyModelError(RuntimeError):
    """A body model cannot be built (missing files or package); one line saying what to do."""


def load_rig_map() -> dict:
    m = yaml.safe_load(read_data_text(RIG_MAP))
    missing = set(JOINTS) - set(m["joint_bone_heads"]) - {"head_top"}
    if missing:
        raise ValueError(f"synth/data/{RIG_MAP}: no bone for joints {sorted(missing)}")
    for bone, part in m["bone_parts"].items():
        if part not in PART_IDS:
            raise ValueError(f"synth/data/{RIG_MAP}: bone {bone} has unknown part {part!r}")
    return m


def sample_phenotype(phenotype: Phenotype, rng: np.random.Generator) -> dict:
    """One body's phenotype from the `body.phenotype` distributions (drawn in key order)."""
    out = {}
    for key in sorted(type(phenotype).model_fields):
        d = getattr(phenotype, key)
        if d.dist == "uniform":
            out[key] = float(rng.uniform(d.low, d.high))
        else:
            out[key] = float(d.low + (d.high - d.low) * rng.beta(d.a, d.b))
    return out


class BodyModel(ABC):
    """Poses a parametric body from a pose's bone rotations; labels come from the posed body."""

    name: str = ""

    @abstractmethod
    def pose(self, rotations: np.ndarray, rest_directions: np.ndarray, phenotype: dict) -> BodyMesh:
        """A posed body with the pelvis at the origin (world frame, Z up).

        rotations: (31, 3, 3) and rest_directions: (31, 3), per bone of POSE_BONES (synth.poses).
        phenotype: the backend's shape parameters.
        """

    @abstractmethod
    def neutral_rest(self) -> tuple[np.ndarray, float]:
        """Rest-pose vertices (V, 3) of an average body and its waist height (m), from which the
        texture stage splits the UV map into garment regions."""


def faces_parts_from_weights(faces: np.ndarray, vertex_bone_indices: np.ndarray,
                             vertex_bone_weights: np.ndarray, bone_part_ids: np.ndarray) -> np.ndarray:
    """Per-face part ids: each vertex takes the part whose bones carry most of its skinning
    weight; each face the part most of its vertices have (the first vertex's on a three-way tie)."""
    n_parts = int(bone_part_ids.max()) + 1
    V = vertex_bone_indices.shape[0]
    acc = np.zeros((V, n_parts))
    np.add.at(acc, (np.repeat(np.arange(V), vertex_bone_indices.shape[1]),
                    bone_part_ids[vertex_bone_indices].ravel()), vertex_bone_weights.ravel())
    vpart = acc.argmax(1)
    fp = vpart[faces]
    face_part = fp[:, 0].copy()
    same12 = fp[:, 1] == fp[:, 2]
    face_part[same12] = fp[same12, 1]
    return face_part.astype(np.uint8)
