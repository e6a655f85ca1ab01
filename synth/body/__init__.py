"""Parametric bodies posed by synth.poses: the interface, the Anny backend (default) and SMPL-X."""
from synth.body.model import POSE_BONES, BodyModel, BodyModelError, sample_phenotype


def create_body_model(cfg: dict) -> BodyModel:
    """The backend named by config `body.backend`."""
    backend = cfg["body"]["backend"]
    if backend == "anny":
        from synth.body.anny_body import AnnyBody
        return AnnyBody()
    if backend == "smplx":
        from synth.body.smplx_body import SmplxBody
        return SmplxBody(cfg["body"]["smplx_model_dir"])
    raise BodyModelError(f"config key 'body.backend' = {backend!r} must be anny or smplx")


__all__ = ["POSE_BONES", "BodyModel", "BodyModelError", "create_body_model", "sample_phenotype"]
