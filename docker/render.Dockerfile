# Render node: `synth render` with Blender Cycles (the bpy module) on an NVIDIA GPU.
#
#   docker build -f docker/render.Dockerfile -t synth-render .        (from the repository root)
#   docker run --rm --gpus all -v /data/synth:/data:ro -v /shared/ds:/out synth-render \
#       --out /out --shards 500 --samples-per-shard 1000 --shard-index 7 --device gpu --data-dir /data
#
# Cycles ships its own CUDA and OptiX kernels and needs only the host driver (libcuda, libnvoptix),
# which the NVIDIA container toolkit mounts for the capabilities below. The CUDA runtime base adds
# the loader configuration and the CUDA_VISIBLE_DEVICES/NVIDIA_VISIBLE_DEVICES conventions.
FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
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
 && chown -R 1000:1000 "$ANNY_CACHE_DIR"
USER 1000

ENTRYPOINT ["synth", "render"]
CMD ["--help"]
