# syntax=docker/dockerfile:1
# idbench in a container. CPU (default):
#   docker build -t idbench .
#   docker run --rm idbench                 # runs the quickstart suite, prints its leaderboard
# CUDA: the PyTorch CUDA wheels bundle the CUDA runtime, so the slim base stays (the host needs
# the NVIDIA driver and container toolkit), or start from an image that already has torch:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 \
#                --build-arg TORCH_VERSION=<a version on that index> -t idbench:cuda .
#   docker build --build-arg BASE=pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime -t idbench:cuda .
#   docker run --rm --gpus all idbench:cuda idbench run quickstart --executor dask
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG EXTRAS=dask
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

RUN useradd --create-home --uid 1000 idbench
WORKDIR /app

# 1. torch, the largest layer (skipped when the base image brings it)
RUN python -c "import torch" 2>/dev/null \
    || pip install --no-cache-dir --index-url "${TORCH_INDEX}" \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

# 2. the other dependencies, from pyproject.toml alone: editing the code keeps this layer cached
COPY pyproject.toml README.md ./
# (DL3013 asks for pinned versions: these are pyproject.toml's, the project's own constraints)
# hadolint ignore=DL3013
RUN mkdir idbench \
    && touch idbench/__init__.py \
    && pip install --no-cache-dir ".[${EXTRAS}]" \
    && pip uninstall --yes idbench \
    && rm -rf idbench build ./*.egg-info

# 3. idbench itself, a plain install: the shipped suites are package data (`idbench ls suites`),
#    found by name from any folder, so /app keeps only the user's outputs
COPY idbench ./idbench
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf idbench build ./*.egg-info \
    && chown -R idbench:idbench /app

USER 1000
CMD ["idbench", "run", "quickstart"]
