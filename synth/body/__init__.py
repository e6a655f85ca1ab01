"""Parametric bodies posed by synth.poses: the interface, the Anny backend (default) and SMPL-X."""
from synth.body.model import POSE_BONES, BodyModel, BodyModelError, sample_phenotype
from synth.config import BodyConfig


def create_body_model(body: BodyConfig) -> BodyModel:
    """The backend named by `body.backend` (the config's `body` section)."""
    # The backends are imported here: each pulls in torch and its body-model package.
    if body.backend == "anny":
        from synth.body.anny_body import AnnyBody
        return AnnyBody()
    from synth.body.smplx_body import SmplxBody
    return SmplxBody(body.smplx_model_dir)


__all__ = ["POSE_BONES", "BodyModel", "BodyModelError", "create_body_model", "sample_phenotype"]
