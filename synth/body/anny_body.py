"""The Anny backend (default): Anny's `cmu_mb` rig, whose bone names are CMU's.

Anny is built once per process (the first build of a rig takes ~40 s and fills ANNY_CACHE_DIR;
later builds load the cache). Per sample: phenotype blend shapes -> rest skeleton -> retargeted
world bone orientations ('world-orient' parameterization: each bone's world orientation, its
head following its parent) -> linear blend skinning.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from synth.body.model import (POSE_BONES, BodyModel, BodyModelError, PosedRig, faces_parts_from_weights,
                              load_rig_map)
from synth.body.retarget import world_deltas
from synth.scene import JOINTS, PART_IDS, BodyMesh

DEFAULT_CACHE = Path.home() / ".cache" / "synth" / "anny"


def _memoise_anny_skinning_kernel() -> None:
    """anny 0.6.2 builds a new warp kernel for linear blend skinning on every forward pass
    (`warp_skinning.get_kernel`), and warp then re-hashes its module at each launch: ~3.4 ms of
    a ~16 ms body. The kernel depends only on the (hashable) dtypes and bone count, so the same
    kernel object can serve every call."""
    from anny.skinning import warp_skinning     # anny (torch, warp): imported with the body model
    if not hasattr(warp_skinning.get_kernel, "cache_info"):
        warp_skinning.get_kernel = functools.cache(warp_skinning.get_kernel)


class AnnyBody(BodyModel):
    name = "anny"

    def __init__(self):
        os.environ.setdefault("ANNY_CACHE_DIR", str(DEFAULT_CACHE))
        try:
            import torch
            import anny
        except ImportError as e:  # pragma: no cover - anny is a hard dependency
            raise BodyModelError(f"body.backend=anny needs the 'anny' package ({e})") from None
        self._torch = torch
        _memoise_anny_skinning_kernel()
        self.model = anny.Anny(rig="cmu_mb").to(dtype=torch.float32)
        labels = list(self.model.bone_labels)
        if labels != POSE_BONES:
            raise BodyModelError(f"anny cmu_mb rig bones {labels} differ from the pose bones")
        self.phenotype_labels = list(self.model.phenotype_labels)
        rig = load_rig_map()
        self.faces = self.model.get_triangular_faces().cpu().numpy().astype(np.int32)
        uv = self.model.texture_coordinates.cpu().numpy().astype(np.float32)
        self.face_uvs = uv[self.model.face_texture_coordinate_indices.cpu().numpy()]
        bone_part_ids = np.array([PART_IDS[rig["bone_parts"][b]] for b in labels])
        self.face_parts = faces_parts_from_weights(
            self.faces, self.model.vertex_bone_indices.cpu().numpy(),
            self.model.vertex_bone_weights.cpu().numpy(), bone_part_ids)
        self._joint_bones = np.array([labels.index(rig["joint_bone_heads"][j]) if j != "head_top" else -1
                                      for j in JOINTS])
        self._head_bone = labels.index("Head")
        head_faces = self.faces[self.face_parts == PART_IDS["head"]]
        self._head_vertices = np.unique(head_faces)
        self._head_top_inset = float(rig["head_top_inset"])
        self._head_top_index = JOINTS.index("head_top")

    def rest(self, phenotype: dict) -> dict:
        """Rest skeleton and vertices (tensors, no autograd) for a phenotype."""
        with self._torch.no_grad():
            return self._rest(phenotype)

    def _rest(self, phenotype: dict) -> dict:
        m = self.model
        _, ph, lc, fa = m.get_tensor_inputs(None, phenotype, None, None)
        coeffs = m._get_phenotype_blendshape_coefficients(ph, lc, fa)
        rest = m.get_rest_model(coeffs)
        return rest

    def neutral_rest(self) -> tuple[np.ndarray, float]:
        rest = self.rest({k: 0.5 for k in self.phenotype_labels})
        waist = float(rest["rest_bone_heads"][0, POSE_BONES.index("Spine"), 2])
        return rest["rest_vertices"][0].numpy(), waist

    def pose(self, rotations: np.ndarray, rest_directions: np.ndarray, phenotype: dict) -> BodyMesh:
        # inference mode: no autograd book-keeping at all (~0.4 ms of the ~8 ms forward pass;
        # the same numbers as under no_grad)
        with self._torch.inference_mode():
            return self._pose(rotations, rest_directions, phenotype)[0]

    def pose_rigged(self, rotations: np.ndarray, rest_directions: np.ndarray,
                    phenotype: dict) -> tuple[BodyMesh, PosedRig]:
        """`pose`, plus what a worn mesh needs to follow this body (synth.body.clothing)."""
        with self._torch.no_grad():
            body, rest, transforms = self._pose(rotations, rest_directions, phenotype)
        from synth.body.clothing.hm08 import phenotype_target_weights
        rig = PosedRig(bone_transforms=transforms, rest_vertices=rest,
                       phenotype_weights=phenotype_target_weights(
                           self.model, {k: phenotype[k] for k in self.phenotype_labels}))
        return body, rig

    def _pose(self, rotations: np.ndarray, rest_directions: np.ndarray,
              phenotype: dict) -> tuple[BodyMesh, np.ndarray, np.ndarray]:
        torch = self._torch
        m = self.model
        missing = set(self.phenotype_labels) - set(phenotype)
        if missing:
            raise ValueError(f"phenotype lacks {sorted(missing)}")
        rest = self.rest({k: phenotype[k] for k in self.phenotype_labels})
        rest_poses = rest["rest_bone_poses"]                      # (1, B, 4, 4)
        heads = rest["rest_bone_heads"][0].numpy()
        tails = rest["rest_bone_tails"][0].numpy()
        body_dirs = tails - heads
        body_dirs /= np.linalg.norm(body_dirs, axis=-1, keepdims=True)
        G = world_deltas(rotations.astype(np.float64), rest_directions.astype(np.float64),
                         body_dirs.astype(np.float64))
        R_rest = rest_poses[0, :, :3, :3].numpy().astype(np.float64)
        D = np.zeros((1, len(POSE_BONES), 4, 4), dtype=np.float32)
        D[0, :, :3, :3] = G @ R_rest
        D[0, :, 3, 3] = 1.0
        # 'world-orient': the root's delta is its world pose; its translation puts the pelvis at 0.
        transforms, poses = m.get_bone_transforms(torch.from_numpy(D), rest_poses,
                                                  pose_parameterization="world-orient")
        verts = m.get_skinned_vertices(rest["rest_vertices"], transforms)[0].numpy()
        bone_heads = poses[0, :, :3, 3].numpy()
        joints = bone_heads[np.maximum(self._joint_bones, 0)].copy()
        # head_top: the top of the skull along the posed Head bone, moved inside the head.
        axis = (G[self._head_bone] @ body_dirs[self._head_bone]).astype(np.float32)
        origin = bone_heads[self._head_bone]
        reach = ((verts[self._head_vertices] - origin) @ axis).max()
        joints[self._head_top_index] = origin + (reach - self._head_top_inset) * axis
        body = BodyMesh(vertices=verts.astype(np.float32), faces=self.faces, face_uvs=self.face_uvs,
                        face_parts=self.face_parts, joints=joints.astype(np.float32), backend=self.name,
                        shape={k: round(float(phenotype[k]), 4) for k in self.phenotype_labels})
        return body, rest["rest_vertices"][0].numpy(), transforms[0].numpy()
