"""The optional SMPL-X backend, for users who bring their own SMPL-X model files.

SMPL-X files are under a non-commercial licence and cannot ship with synth: point config
`body.smplx_model_dir` at the folder holding SMPLX_{NEUTRAL,MALE,FEMALE}.npz (from
https://smpl-x.is.tue.mpg.de) and `pip install smplx`. UVs come from `smplx_uv.obj` in that
folder when present (distributed beside the model); otherwise a cylindrical projection is used.

Retargeting is the same as Anny's (synth.body.retarget): each pose bone maps to the SMPL-X joint
that rotates the same segment; the world deltas are turned into SMPL-X's parent-relative
axis-angles (SMPL-X rest frames are aligned with its world axes: Y up, facing +Z).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from synth.body.model import POSE_BONES, BodyModel, BodyModelError
from synth.body.retarget import world_deltas
from synth.scene import JOINTS, PART_IDS, BodyMesh

# SMPL-X body joints (the first 22 of its kinematic tree) and their parents.
SMPLX_JOINTS = ["pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
                "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
                "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                "left_wrist", "right_wrist"]
# pose bone -> (SMPL-X joint whose rotation moves the segment, joint at the segment's far end)
BONE_TO_SMPLX = {
    "Hips": ("pelvis", None), "LowerBack": ("spine1", "spine2"), "Spine": ("spine2", "spine3"),
    "Spine1": ("spine3", "neck"), "Neck": ("neck", "head"), "Head": ("head", None),
    "LeftShoulder": ("left_collar", "left_shoulder"), "LeftArm": ("left_shoulder", "left_elbow"),
    "LeftForeArm": ("left_elbow", "left_wrist"), "LeftUpLeg": ("left_hip", "left_knee"),
    "LeftLeg": ("left_knee", "left_ankle"), "LeftFoot": ("left_ankle", "left_foot"),
    "RightShoulder": ("right_collar", "right_shoulder"), "RightArm": ("right_shoulder", "right_elbow"),
    "RightForeArm": ("right_elbow", "right_wrist"), "RightUpLeg": ("right_hip", "right_knee"),
    "RightLeg": ("right_knee", "right_ankle"), "RightFoot": ("right_ankle", "right_foot"),
}
JOINT_TO_SMPLX = {"pelvis": "pelvis", "neck": "neck", "right_shoulder": "right_shoulder",
                  "right_elbow": "right_elbow", "right_wrist": "right_wrist", "left_shoulder": "left_shoulder",
                  "left_elbow": "left_elbow", "left_wrist": "left_wrist", "right_hip": "right_hip",
                  "right_knee": "right_knee", "right_ankle": "right_ankle", "left_hip": "left_hip",
                  "left_knee": "left_knee", "left_ankle": "left_ankle"}
SMPLX_PART = {"pelvis": "torso", "spine1": "torso", "spine2": "torso", "spine3": "torso", "neck": "head",
              "head": "head", "left_collar": "torso", "right_collar": "torso", "left_hip": "left_thigh",
              "right_hip": "right_thigh", "left_knee": "left_lower_leg", "right_knee": "right_lower_leg",
              "left_ankle": "left_foot", "right_ankle": "right_foot", "left_foot": "left_foot",
              "right_foot": "right_foot", "left_shoulder": "left_upper_arm",
              "right_shoulder": "right_upper_arm", "left_elbow": "left_forearm",
              "right_elbow": "right_forearm", "left_wrist": "left_hand", "right_wrist": "right_hand"}
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def _axis_angle(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation
    return Rotation.from_matrix(R).as_rotvec()


class SmplxBody(BodyModel):
    name = "smplx"
    phenotype_labels = ["gender", "height", "weight"]

    def __init__(self, model_dir: str | None):
        if not model_dir:
            raise BodyModelError("body.backend=smplx needs body.smplx_model_dir: a folder with SMPLX_NEUTRAL.npz "
                                 "(SMPL-X model files from https://smpl-x.is.tue.mpg.de, not shipped with synth)")
        root = Path(model_dir)
        files = sorted(root.glob("SMPLX_*.npz")) + sorted((root / "smplx").glob("SMPLX_*.npz"))
        if not files:
            raise BodyModelError(f"{root}: no SMPL-X model files (SMPLX_NEUTRAL.npz / SMPLX_MALE.npz / "
                                 "SMPLX_FEMALE.npz); download them from https://smpl-x.is.tue.mpg.de")
        try:
            import smplx
            import torch
        except ImportError:
            raise BodyModelError("body.backend=smplx needs the 'smplx' package: pip install smplx") from None
        self._torch = torch
        folder = files[0].parent
        self.models = {}
        for gender in ("neutral", "male", "female"):
            if (folder / f"SMPLX_{gender.upper()}.npz").exists():
                self.models[gender] = smplx.SMPLX(str(folder), gender=gender, use_pca=False, ext="npz")
        base = next(iter(self.models.values()))
        self.faces = np.asarray(base.faces, dtype=np.int32)
        weights = base.lbs_weights.cpu().numpy()[:, :len(SMPLX_JOINTS)]
        vpart = np.array([PART_IDS[SMPLX_PART[SMPLX_JOINTS[j]]] for j in weights.argmax(1)])
        fp = vpart[self.faces]
        self.face_parts = np.where(fp[:, 1] == fp[:, 2], fp[:, 1], fp[:, 0]).astype(np.uint8)
        self.face_uvs = self._uvs(folder, base)
        self.parents = base.parents.cpu().numpy()[:len(SMPLX_JOINTS)]

    def _uvs(self, folder: Path, base) -> np.ndarray:
        obj = folder / "smplx_uv.obj"
        if obj.exists():
            vt, ft = [], []
            for line in obj.read_text().splitlines():
                if line.startswith("vt "):
                    vt.append([float(x) for x in line.split()[1:3]])
                elif line.startswith("f "):
                    ft.append([int(c.split("/")[1]) - 1 for c in line.split()[1:4]])
            return np.asarray(vt, np.float32)[np.asarray(ft)]
        v = base.v_template.cpu().numpy()
        u = (np.arctan2(v[:, 0], v[:, 2]) / (2 * np.pi) + 0.5)
        h = (v[:, 1] - v[:, 1].min()) / np.ptp(v[:, 1])
        return np.stack([u, h], -1).astype(np.float32)[self.faces]

    def _model(self, phenotype: dict):
        g = phenotype.get("gender", 0.5)
        key = "female" if g < 0.33 else "male" if g > 0.67 else "neutral"
        return self.models.get(key) or next(iter(self.models.values()))

    def _betas(self, phenotype: dict):
        b = np.zeros((1, 10), np.float32)
        # SMPL-X's first two shape components roughly follow stature and girth.
        b[0, 0] = (phenotype.get("height", 0.5) - 0.5) * 4.0
        b[0, 1] = (phenotype.get("weight", 0.5) - 0.5) * 4.0
        return self._torch.from_numpy(b)

    def _rest_joints(self, model, betas) -> np.ndarray:
        out = model(betas=betas)
        return out.joints[0, :len(SMPLX_JOINTS)].detach().cpu().numpy() @ Y_UP_TO_Z_UP.T

    def neutral_rest(self) -> tuple[np.ndarray, float]:
        model = self._model({})
        out = model(betas=self._betas({}))
        v = out.vertices[0].detach().cpu().numpy() @ Y_UP_TO_Z_UP.T
        j = out.joints[0].detach().cpu().numpy() @ Y_UP_TO_Z_UP.T
        return v, float(j[SMPLX_JOINTS.index("spine2"), 2])

    def pose(self, rotations: np.ndarray, rest_directions: np.ndarray, phenotype: dict) -> BodyMesh:
        torch = self._torch
        model, betas = self._model(phenotype), self._betas(phenotype)
        J = self._rest_joints(model, betas)
        idx = {n: i for i, n in enumerate(SMPLX_JOINTS)}
        bones = [b for b in POSE_BONES if b in BONE_TO_SMPLX]
        src_rot = np.stack([rotations[POSE_BONES.index(b)] for b in bones])
        src_dir = np.stack([rest_directions[POSE_BONES.index(b)] for b in bones])
        body_dir = []
        for b in bones:
            j, end = BONE_TO_SMPLX[b]
            body_dir.append(J[idx[end]] - J[idx[j]] if end else np.array([0.0, 0.0, 1.0]))
        G = world_deltas(src_rot, src_dir, np.stack(body_dir), root=bones.index("Hips"))
        glob = np.tile(np.eye(3), (len(SMPLX_JOINTS), 1, 1))
        for b, g in zip(bones, G):
            glob[idx[BONE_TO_SMPLX[b][0]]] = Y_UP_TO_Z_UP.T @ g @ Y_UP_TO_Z_UP   # into SMPL-X's frame
        for j in range(1, len(SMPLX_JOINTS)):   # unmapped joints follow their parent
            if SMPLX_JOINTS[j] not in {v[0] for v in BONE_TO_SMPLX.values()}:
                glob[j] = glob[self.parents[j]]
        local = np.stack([glob[0]] + [glob[self.parents[j]].T @ glob[j] for j in range(1, len(SMPLX_JOINTS))])
        aa = _axis_angle(local).astype(np.float32)
        out = model(betas=betas, global_orient=torch.from_numpy(aa[None, 0]),
                    body_pose=torch.from_numpy(aa[None, 1:22].reshape(1, -1)))
        verts = out.vertices[0].detach().cpu().numpy() @ Y_UP_TO_Z_UP.T
        joints_all = out.joints[0, :len(SMPLX_JOINTS)].detach().cpu().numpy() @ Y_UP_TO_Z_UP.T
        pelvis = joints_all[0].copy()
        verts, joints_all = verts - pelvis, joints_all - pelvis
        joints = np.zeros((len(JOINTS), 3), np.float32)
        for i, n in enumerate(JOINTS):
            if n == "head_top":
                head, neck = joints_all[idx["head"]], joints_all[idx["neck"]]
                axis = (head - neck) / np.linalg.norm(head - neck)
                head_v = np.unique(self.faces[self.face_parts == PART_IDS["head"]])
                reach = ((verts[head_v] - head) @ axis).max()
                joints[i] = head + (reach - 0.02) * axis
            else:
                joints[i] = joints_all[idx[JOINT_TO_SMPLX[n]]]
        return BodyMesh(vertices=verts.astype(np.float32), faces=self.faces, face_uvs=self.face_uvs,
                        face_parts=self.face_parts, joints=joints, backend=self.name,
                        shape={k: round(float(phenotype.get(k, 0.5)), 4) for k in self.phenotype_labels})
