# Training node: `synth train` / `synth eval` with PyTorch on NVIDIA GPUs.
#
#   docker build -f docker/train.Dockerfile -t synth-train .          (from the repository root)
#   docker run --rm --gpus all --shm-size 8g -v /shared/ds:/data:ro -v /shared/runs:/runs synth-train \
#       train --data /data --out /runs/r1 train.device=cuda
#
# The CUDA torch wheels bring their own CUDA runtime, cuDNN and NCCL; the host needs a driver new
# enough for TORCH_CUDA (cu128: driver >= 570). Pick another index with --build-arg TORCH_CUDA=cu126.
FROM nvidia/cuda:12.8.1-runtime-ubuntu22.04

ARG TORCH_CUDA=cu128
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv \
      libx11-6 libxext6 libxrender1 libxfixes3 libxi6 libxkbcommon0 libxcb1 libgomp1 \
 && rm -rf /var/lib/apt/lists/*

RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}" torch==2.13.0

# The package depends on bpy (the render stage) as well; training never imports it.
WORKDIR /opt/synth
COPY pyproject.toml ./
COPY synth ./synth
RUN pip install ".[tensorboard]" \
 && useradd --create-home --uid 1000 synth
USER 1000

ENTRYPOINT ["synth"]
CMD ["train", "--help"]
