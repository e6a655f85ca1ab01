"""Poses: CMU MoCap ASF/AMC parsing, forward kinematics, the pose set and its file, sampling."""
from synth.poses.asf_amc import Bone, Motion, Skeleton, asf_path_for_clip, parse_amc, parse_asf
from synth.poses.kinematics import (ASF_TO_CMU_MB, BONE_NAMES, JOINT_FROM_BONE_END, euler_to_matrix,
                                    facing_yaw_of, forward_kinematics, motion_to_pose_arrays)
from synth.poses.posefile import PoseSet, load_poses, save_poses
from synth.poses.sampling import load_clips, load_pool, sample_poses, thin

__all__ = ["Bone", "Motion", "Skeleton", "asf_path_for_clip", "parse_amc", "parse_asf",
           "ASF_TO_CMU_MB", "BONE_NAMES", "JOINT_FROM_BONE_END", "euler_to_matrix", "facing_yaw_of",
           "forward_kinematics", "motion_to_pose_arrays", "PoseSet", "load_poses", "save_poses",
           "load_clips", "load_pool", "sample_poses", "thin"]
