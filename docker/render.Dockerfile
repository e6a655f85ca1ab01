# Render node: `synth render` with Blender Cycles (the bpy module) on an NVIDIA GPU.
#
#   docker build -f docker/render.Dockerfile -t synth-render .        (from the repository root)
#   docker run --rm --gpus all -v /data/synth:/data:ro -v /shared/ds:/out synth-render \
#       --out /out --shards 500 --samples-per-shard 1000 --shard-index 7 --device gpu --data-dir /data
#
# Check a node first:  docker run --rm --gpus all --entrypoint synth synth-render doctor --device gpu
#
# Cycles ships its own CUDA and OptiX kernels and needs only the host driver, which the NVIDIA
# container toolkit mounts for the capabilities below: `compute` (libcuda), `utility`
# (nvidia-smi, used by `synth doctor` and the local pool to list GPUs) and `graphics`, which
# brings libnvoptix and libnvidia-rtcore: without it Cycles finds CUDA but no OptiX device.
# OptiX compiles Cycles' kernels for the GPU on first use (up to a minute) into OPTIX_CACHE_PATH,
# CUDA its PTX into CUDA_CACHE_PATH: both point into /cache, writable by any uid (`docker run
# --user`); mount a volume there to keep the compiled kernels between containers.
FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    OPTIX_CACHE_PATH=/cache/optix \
    CUDA_CACHE_PATH=/cache/cuda \
    CUDA_CACHE_MAXSIZE=4294967296 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# python3.11 (bpy 5.0 is built for exactly 3.11); X11/xkb client libraries the bpy module links
# against even when rendering in the background (see `ldd bpy/__init__.so`); EGL for Blender's
# GPU probing.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3.11 python3.11-venv \
      libx11-6 libxext6 libxrender1 libxfixes3 libxi6 libxkbcommon0 libxcb1 libegl1 libgomp1 \
 && rm -rf /var/lib/apt/lists/*

RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch is only needed by the Anny body model, which runs on the CPU: the CPU build keeps the
# image ~2 GB smaller. The GPU work is Cycles'.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# A regular install: the runtime data (skin tones, rig part map) is package data in synth/data.
WORKDIR /opt/synth
COPY pyproject.toml ./
COPY synth ./synth
COPY blender_scripts ./blender_scripts
RUN pip install ".[ray]"

# Anny builds its rig cache on first use (~40 s per process otherwise): bake it into the image.
ENV ANNY_CACHE_DIR=/opt/anny-cache
# Unprivileged by default (uid 1000; `docker run --user` picks another).
RUN python -c "from synth.body.anny_body import AnnyBody; AnnyBody()" \
 && useradd --create-home --uid 1000 synth \
 && chown -R 1000:1000 "$ANNY_CACHE_DIR" \
 && mkdir -p /cache/optix /cache/cuda && chmod -R 1777 /cache
USER 1000

ENTRYPOINT ["synth", "render"]
CMD ["--help"]
