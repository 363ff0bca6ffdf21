# syntax=docker/dockerfile:1
# The runtime Lambda as a container image (the other way to deploy it is the zip of deploy/lambda_zip.py, whose
# package this image holds: the same locked versions, less the boto3 the base image already has). Build from the
# repository root, for the function's architecture, and push to an ECR repository:
#
#   docker build -f deploy/lambda.Dockerfile --platform linux/amd64 -t ACCOUNT.dkr.ecr.REGION.amazonaws.com/pipegen-runtime:0.1.0 .
#
# The handler is pipegen.runtime.lambda_handler.handler. The base is AWS's python3.11 image (Amazon Linux 2);
# pin its digest where a registry can be asked (`docker buildx imagetools inspect public.ecr.aws/lambda/python:3.11`).

FROM public.ecr.aws/lambda/python:3.11 AS build
# Set by BuildKit from --platform: amd64 or arm64.
ARG TARGETARCH=amd64
ENV UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
COPY templates ./templates
COPY deploy/lambda_zip.py ./deploy/
RUN python3 deploy/lambda_zip.py --keep-dir /build/package --no-zip \
        --arch "$([ "$TARGETARCH" = arm64 ] && echo arm64 || echo x86_64)"

FROM public.ecr.aws/lambda/python:3.11
COPY --from=build /build/package ${LAMBDA_TASK_ROOT}
CMD ["pipegen.runtime.lambda_handler.handler"]
