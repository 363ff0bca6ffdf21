#!/bin/sh
# Install pipegen's runtime (pipegen-ml[runtime,aws,sql]) into a new virtual environment, at exactly the versions
# of uv.lock, every download checked against the lock's hashes. The runtime image (deploy/runtime.Dockerfile)
# runs this script; tests/test_deploy_images.py runs the same script into a temporary directory.
#
#   deploy/install-runtime.sh DEST [--kfp]      (from the repository root; needs uv 0.13.8 and Python 3.11)
#
# --kfp adds kfp 2.17.0 and what it needs, at the lock's versions, so KFP lightweight components run in this
# environment with no kfp installed at start and no network (best compiled with install_kfp_package=False).
# UV (the uv command, default `uv`) and PYTHON (the interpreter the environment is made from, default `python3`)
# may be set; uv's own variables (UV_COMPILE_BYTECODE, UV_NO_CACHE, UV_OFFLINE, ...) apply.
set -eu

usage() {
    echo "usage: deploy/install-runtime.sh DEST [--kfp]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
dest=$1
with_kfp=${2:-}
[ -z "$with_kfp" ] || [ "$with_kfp" = "--kfp" ] || usage
uv=${UV:-uv}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The runtime's dependencies as the lock has them. With --kfp, the kfp dependency group's resolution (the same
# mlflow-skinny and every shared version, plus kfp's own), pruned of what only the tests use (full mlflow, moto)
# and of kfp-kubernetes, which only the compiling side imports. pip stays: a component compiled with kfp's
# default install_kfp_package=True runs `pip install kfp==2.17.0` first, which then finds kfp already there.
if [ "$with_kfp" = "--kfp" ]; then
    "$uv" export --frozen --quiet --no-default-groups --group kfp --extra runtime --extra aws --extra sql \
        --prune mlflow --prune moto --prune kfp-kubernetes \
        --no-emit-project --output-file "$work/requirements.txt"
else
    "$uv" export --frozen --quiet --no-default-groups --extra runtime --extra aws --extra sql \
        --no-emit-project --output-file "$work/requirements.txt"
fi

"$uv" venv --quiet --python "$python" "$dest"
# --no-deps: the exported list is the whole closure, each entry pinned and hashed.
"$uv" pip install --quiet --python "$dest/bin/python" --require-hashes --no-deps -r "$work/requirements.txt"
# This project, as the wheel users would install (templates inside it), not an editable checkout.
"$uv" build --quiet --wheel --out-dir "$work/dist" .
"$uv" pip install --quiet --python "$dest/bin/python" --no-deps "$work"/dist/pipegen_ml-*.whl
"$dest/bin/python" -m pipegen.runtime --help >/dev/null
