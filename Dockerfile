# gansweep CUDA worker (docs/docker.md). Build from the repository root:
#   docker build -t gansweep .
#
# Base: PyTorch's official runtime image with torch 2.7.1 + torchvision 0.22.1 built for CUDA 12.8 and
# cuDNN 9, Python 3.11 in /opt/conda. CUDA 12.8 covers Volta through Hopper and Blackwell; the host needs
# the NVIDIA Container Toolkit and a CUDA 12 driver (>= 570, or >= 525 through minor-version
# compatibility). Any other tag with Python >= 3.10 and torch >= 2.2 works the same, e.g.
#   --build-arg BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
ARG BASE=pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime
FROM ${BASE}

# MLFLOW_TRACKING_URI and GANSWEEP_STORAGE stay unset on purpose: they come from `docker run -e` or
# compose at run time, so no address or password is baked into the image (unset = the local ./mlruns).
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GANSWEEP_CACHE=/work/.cache

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gansweep ./gansweep
# The image's torch/torchvision become constraints: pip keeps them anyway (they satisfy torch>=2.2), but
# should a dependency ever want another torch, the build fails here instead of silently swapping in a
# different multi-GB wheel. The checks prove the CUDA build survived and the entry point works.
RUN pip list --format=freeze | grep -iE '^(torch|torchvision)==' > /tmp/keep.txt \
 && pip install --no-cache-dir -c /tmp/keep.txt ".[postgres]" \
 && python -c "import torch, gansweep; assert torch.version.cuda, 'torch lost its CUDA build'" \
 && gansweep --help > /dev/null \
 && rm -rf /src /tmp/keep.txt

# uid 1000 matches the usual first user on the host, so bind-mounted folders are writable without
# chown; --non-unique because some bases already have a user with that uid.
ARG UID=1000
RUN useradd --create-home --non-unique --uid "${UID}" gansweep \
 && mkdir -p /work/.cache /work/data /work/mlruns \
 && chown -R gansweep:gansweep /work
# Named volumes mounted on /work/.cache (judge) and /work/data (downloads) inherit this ownership.

WORKDIR /work
# Shipped grids, read-only for the worker; mount your own with -v "$PWD/grids:/work/grids:ro".
COPY sweeps ./sweeps
USER gansweep

ENTRYPOINT ["gansweep"]
CMD ["--help"]
