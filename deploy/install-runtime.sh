#!/bin/sh
# Install pipegen's runtime (pipegen-ml[runtime,aws,sql]) into a new virtual environment, at exactly the versions
# of uv.lock, every download checked against the lock's hashes. The runtime image (deploy/runtime.Dockerfile)
# runs this script; tests/test_deploy_images.py runs the same script into a temporary directory.
#
#   deploy/install-runtime.sh DEST [--kfp] [--spark-ray]      (from the repository root; needs uv 0.13.8 and Python 3.11)
#
# --kfp adds kfp 2.17.0 and what it needs, at the lock's versions, so KFP lightweight components run in this
# environment with no kfp installed at start and no network (best compiled with install_kfp_package=False).
# --spark-ray adds pipegen's [spark] and [ray] extras at the lock's versions: pyspark (its spark-submit runs a
# spark step's application; it needs a Java 17+ runtime, which this script does not install) and ray[default]
# (Ray job submission, and what a Ray job's entrypoint imports). Without it neither is installed.
# UV (the uv command, default `uv`) and PYTHON (the interpreter the environment is made from, default `python3`)
# may be set; uv's own variables (UV_COMPILE_BYTECODE, UV_NO_CACHE, UV_OFFLINE, ...) apply.
set -eu

usage() {
    echo "usage: deploy/install-runtime.sh DEST [--kfp] [--spark-ray]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 3 ] || usage
dest=$1
shift
with_kfp=
with_spark_ray=
for flag in "$@"; do
    case $flag in
        --kfp) with_kfp=1 ;;
        --spark-ray) with_spark_ray=1 ;;
        *) usage ;;
    esac
done
uv=${UV:-uv}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

extras="--extra runtime --extra aws --extra sql"
[ -z "$with_spark_ray" ] || extras="$extras --extra spark --extra ray"
# The runtime's dependencies as the lock has them. With --kfp, the kfp dependency group's resolution (the same
# mlflow-skinny and every shared version, plus kfp's own), pruned of what only the tests use (full mlflow, moto;
# pyspark and ray unless --spark-ray asks for them) and of kfp-kubernetes, which only the compiling side imports.
# pip stays: a component compiled with kfp's default install_kfp_package=True runs `pip install kfp==2.17.0`
# first, which then finds kfp already there.
if [ -n "$with_kfp" ]; then
    prune="--prune mlflow --prune moto --prune kfp-kubernetes"
    [ -n "$with_spark_ray" ] || prune="$prune --prune pyspark --prune ray"
    # shellcheck disable=SC2086 # $extras and $prune are lists of options
    "$uv" export --frozen --quiet --no-default-groups --group kfp $extras $prune \
        --no-emit-project --output-file "$work/requirements.txt"
else
    # shellcheck disable=SC2086 # $extras is a list of options
    "$uv" export --frozen --quiet --no-default-groups $extras \
        --no-emit-project --output-file "$work/requirements.txt"
fi

"$uv" venv --quiet --python "$python" "$dest"
# --no-deps: the exported list is the whole closure, each entry pinned and hashed.
"$uv" pip install --quiet --python "$dest/bin/python" --require-hashes --no-deps -r "$work/requirements.txt"
# This project, as the wheel users would install (templates inside it), not an editable checkout.
"$uv" build --quiet --wheel --out-dir "$work/dist" .
"$uv" pip install --quiet --python "$dest/bin/python" --no-deps "$work"/dist/pipegen_ml-*.whl
"$dest/bin/python" -m pipegen.runtime --help >/dev/null
