# syntax=docker/dockerfile:1
# pipegen's runtime image: the image KFP components (targets.kfp.base_image), Argo runtime containers
# (targets.argo.runtime_image) and Kubernetes-based steps run pipegen.runtime in. Build from the repository root:
#
#   docker build -f deploy/runtime.Dockerfile -t REGISTRY/pipegen-runtime:0.1.0 .
#   docker build -f deploy/runtime.Dockerfile --target kfp -t REGISTRY/pipegen-runtime-kfp:0.1.0 .
#
# The default target has pipegen-ml[runtime,aws,sql] at the versions of uv.lock in /opt/pipegen (first on PATH);
# the `kfp` target adds kfp 2.17.0, so KFP components need no `pip install kfp` (nor network) at start.
# Add a database driver (psycopg, PyMySQL, ...) in an image built FROM this one.
# The base is pinned by exact tag: pin its digest too where a registry can be asked
# (`docker buildx imagetools inspect python:3.11.14-slim-bookworm`).

FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# The source and uv: only what the wheel and the lock need (deploy/runtime.Dockerfile.dockerignore).
FROM base AS source
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
COPY templates ./templates
COPY deploy/install-runtime.sh ./deploy/

FROM source AS build-runtime
RUN deploy/install-runtime.sh /opt/pipegen

FROM source AS build-kfp
RUN deploy/install-runtime.sh /opt/pipegen --kfp

# Final images: the environment alone (no uv, no source, no caches), run as an unprivileged user with a numeric
# uid so Kubernetes' runAsNonRoot can verify it.
FROM base AS kfp
RUN groupadd --system --gid 10001 pipegen \
    && useradd --system --uid 10001 --gid pipegen --create-home --home-dir /home/pipegen pipegen
COPY --from=build-kfp /opt/pipegen /opt/pipegen
ENV PATH=/opt/pipegen/bin:$PATH
USER 10001:10001
WORKDIR /home/pipegen
CMD ["python", "-m", "pipegen.runtime", "--help"]

FROM base AS runtime
RUN groupadd --system --gid 10001 pipegen \
    && useradd --system --uid 10001 --gid pipegen --create-home --home-dir /home/pipegen pipegen
COPY --from=build-runtime /opt/pipegen /opt/pipegen
ENV PATH=/opt/pipegen/bin:$PATH
USER 10001:10001
WORKDIR /home/pipegen
CMD ["python", "-m", "pipegen.runtime", "--help"]
