# syntax=docker/dockerfile:1
# pipegen's runtime image: the image KFP components (targets.kfp.base_image), Argo runtime containers
# (targets.argo.runtime_image) and Kubernetes-based steps run pipegen.runtime in. Build from the repository root:
#
#   docker build -f deploy/runtime.Dockerfile -t REGISTRY/pipegen-runtime:0.1.0 .
#   docker build -f deploy/runtime.Dockerfile --target kfp -t REGISTRY/pipegen-runtime-kfp:0.1.0 .
#   docker build -f deploy/runtime.Dockerfile --target spark-ray -t REGISTRY/pipegen-runtime-spark-ray:0.1.0 .
#   docker build -f deploy/runtime.Dockerfile --target kfp-spark-ray -t REGISTRY/pipegen-runtime-kfp-spark-ray:0.1.0 .
#
# The default target has pipegen-ml[runtime,aws,sql] at the versions of uv.lock in /opt/pipegen (first on PATH);
# the `kfp` target adds kfp 2.17.0, so KFP components need no `pip install kfp` (nor network) at start.
# Spark and Ray steps need more where they run (deploy/install-runtime.sh --spark-ray): `spark-ray` adds pipegen's
# [spark] and [ray] extras at uv.lock's versions (pyspark 4.3.0 with its spark-submit, ray[default] 2.60.0) and
# Java 17 (Debian's openjdk-17-jre-headless: Spark 4 needs 17+), for the runtime containers that run spark-submit
# on local[N] (Argo, Kubernetes steps) and as a Ray job's image; `kfp-spark-ray` is the same with kfp, for KFP
# components (targets.kfp.base_image) of pipelines with Spark or Ray steps. The others have neither pyspark nor
# ray nor Java. A Ray cluster that runs the jobs needs the same Ray (2.60.0) and Python (3.11) as the submitter.
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

FROM source AS build-spark-ray
RUN deploy/install-runtime.sh /opt/pipegen --spark-ray

FROM source AS build-kfp-spark-ray
RUN deploy/install-runtime.sh /opt/pipegen --kfp --spark-ray

# Java 17 for spark-submit, from the base's own Debian release (bookworm). Its version is not pinned (DL3008):
# Debian's archive keeps only the current security update of a package, so a pinned JRE would stop building at the
# next one; the release is fixed by the base image and the major version by the package's name. The slim base has
# no man page directories, which the JRE's alternatives link into.
FROM base AS java
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && java -version

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

FROM java AS spark-ray
RUN groupadd --system --gid 10001 pipegen \
    && useradd --system --uid 10001 --gid pipegen --create-home --home-dir /home/pipegen pipegen
COPY --from=build-spark-ray /opt/pipegen /opt/pipegen
ENV PATH=/opt/pipegen/bin:$PATH
USER 10001:10001
WORKDIR /home/pipegen
CMD ["python", "-m", "pipegen.runtime", "--help"]

FROM java AS kfp-spark-ray
RUN groupadd --system --gid 10001 pipegen \
    && useradd --system --uid 10001 --gid pipegen --create-home --home-dir /home/pipegen pipegen
COPY --from=build-kfp-spark-ray /opt/pipegen /opt/pipegen
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
