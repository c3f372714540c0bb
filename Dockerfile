# vaelab: one image for the API, the migrate step and the workers (docker-compose.yml).
# The CUDA wheels of torch come from the PyTorch index (TORCH_INDEX); for a CPU-only image
# build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VAELAB_ARTIFACT_ROOT=/artifacts

RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 vaelab \
    && mkdir -p /artifacts && chown vaelab /artifacts

WORKDIR /app
# torch first, pinned, in its own layer (it is most of the image)
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md* ./
COPY vae_engine ./vae_engine
COPY service ./service
COPY worker ./worker
COPY migrations ./migrations
COPY alembic.ini ./
# editable: alembic.ini and migrations/ are found next to the packages
RUN pip install -e .

USER vaelab
EXPOSE 8000
CMD ["vaelab", "api", "--host", "0.0.0.0", "--port", "8000"]
