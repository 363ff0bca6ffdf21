"""Build the runtime Lambda's deployment package: a zip of pipegen-ml[runtime,aws,sql] for the python3.11 runtime.

    python3 deploy/lambda_zip.py [--output build/lambda/pipegen-runtime.zip] [--arch x86_64|arm64] [--keep-dir DIR]
    python3 deploy/lambda_zip.py --keep-dir DIR --no-zip     (the package's files only: deploy/lambda.Dockerfile)

Run it from the repository root with uv 0.13.8 (the UV variable, `python3 -m uv`'s package, or `uv` on PATH). The versions are uv.lock's,
every wheel checked against the lock's hashes, for Lambda's platform whatever the machine building it: the
python3.11 runtime runs on Amazon Linux 2 (glibc 2.26), so only manylinux2014 (glibc 2.17) wheels load there.
What the Lambda Python runtime already provides (boto3 and what only it needs) is left out, and so are
`tests` directories, byte code and the install records (RECORD; direct_url.json and uv_cache.json, which
name a temporary path or the build's time). The zip is reproducible: same lock and source, same bytes. The function's handler is
`pipegen.runtime.lambda_handler.handler`. Exits 1 if the package is over Lambda's 250 MB unzipped limit; a zip
over 50 MB must be uploaded through S3 rather than directly (it says so).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLER = "pipegen.runtime.lambda_handler.handler"
PYTHON_VERSION = "3.11"
# Lambda's architectures and the uv platform whose wheels their python3.11 runtime (Amazon Linux 2) loads.
PLATFORMS = {"x86_64": "x86_64-manylinux2014", "arm64": "aarch64-manylinux2014"}
# Distributions the Lambda Python runtime ships (boto3 and its exclusive dependencies): pruned from the package.
# The build fails if pruning boto3 would drop anything else, which Lambda would then lack.
LAMBDA_PROVIDED = frozenset({"boto3", "botocore", "jmespath", "s3transfer"})
EXTRAS = ("runtime", "aws", "sql")
UNZIPPED_LIMIT = 250 * 1024 * 1024  # deployment package, unzipped, layers included
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # a zip uploaded in the API call itself; larger ones go through S3
# Every entry gets this time and these permissions: the zip's bytes depend only on the files' contents.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
LEFT_OUT_DIRS = frozenset({"__pycache__", "tests"})
LEFT_OUT_FILES = frozenset({"RECORD", "direct_url.json", "uv_cache.json"})


def uv_command() -> list[str]:
    """uv: the UV variable (as deploy/install-runtime.sh reads it), uv's Python package here or in the interpreter
    this one's virtual environment was made from (the Makefile's `python3 -m uv`), else the `uv` on PATH."""
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    for python in dict.fromkeys([sys.executable, getattr(sys, "_base_executable", sys.executable)]):
        found = subprocess.run(
            [python, "-c", "import uv; print(uv.find_uv_bin())"], capture_output=True, text=True, check=False
        )
        if found.returncode == 0:
            return [found.stdout.strip()]
    on_path = shutil.which("uv")
    if on_path is None:
        raise SystemExit("lambda_zip: uv is not installed (python3 -m pip install uv==0.13.8)")
    return [on_path]


def _uv(*args: str) -> str:
    done = subprocess.run([*uv_command(), *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"lambda_zip: uv {' '.join(args[:2])} failed:\n{done.stderr}")
    return done.stdout


def _export(*prune: str) -> str:
    """The runtime's dependencies as the lock pins them (with hashes), less the pruned packages' closures."""
    extras = [arg for extra in EXTRAS for arg in ("--extra", extra)]
    pruned = [arg for name in prune for arg in ("--prune", name)]
    return _uv("export", "--frozen", "--no-default-groups", *extras, *pruned, "--no-emit-project", "--quiet")


def _names(requirements: str) -> set[str]:
    return {line.split("==")[0] for line in requirements.splitlines() if line[:1].isalnum()}


def requirements() -> str:
    """The pinned, hashed requirements the package installs: the lock's, without what Lambda provides."""
    pruned = _export("boto3")
    dropped = _names(_export()) - _names(pruned)
    if dropped != LAMBDA_PROVIDED:
        raise SystemExit(
            f"lambda_zip: leaving boto3 out would drop {sorted(dropped)}, not {sorted(LAMBDA_PROVIDED)} "
            "(what the Lambda Python runtime provides): update LAMBDA_PROVIDED only if Lambda provides them"
        )
    return pruned


def install(target: Path, arch: str) -> None:
    """Install the locked dependencies and this project's wheel into target, for Lambda's platform."""
    platform = ["--python-platform", PLATFORMS[arch], "--python-version", PYTHON_VERSION, "--only-binary", ":all:"]
    with tempfile.TemporaryDirectory(prefix="pipegen-lambda-") as tmp:
        listed = Path(tmp) / "requirements.txt"
        listed.write_text(requirements(), encoding="utf-8")
        into = ["pip", "install", "--quiet", "--target", str(target), *platform, "--no-deps"]
        # --no-deps: the exported list is the whole closure, each entry pinned and hashed.
        _uv(*into, "--require-hashes", "-r", str(listed))
        _uv("build", "--quiet", "--wheel", "--out-dir", str(Path(tmp) / "dist"), str(ROOT))
        (wheel,) = (Path(tmp) / "dist").glob("pipegen_ml-*.whl")
        _uv(*into, str(wheel))
    _leave_out(target)


def _leave_out(target: Path) -> None:
    """Remove what the runtime never loads: tests, byte code (the package is read-only there), install records."""
    # uv's lock file for the target directory, not part of any package.
    (target / ".lock").unlink(missing_ok=True)
    for folder, dirs, files in os.walk(target):
        for name in [d for d in dirs if d in LEFT_OUT_DIRS]:
            shutil.rmtree(Path(folder, name))
            dirs.remove(name)
        for name in files:
            if name.endswith((".pyc", ".pyo")) or (name in LEFT_OUT_FILES and folder.endswith(".dist-info")):
                Path(folder, name).unlink()


def write_zip(tree: Path, output: Path) -> tuple[int, int]:
    """Zip tree into output reproducibly (sorted entries, fixed times and modes); returns (unzipped, zipped) bytes."""
    files = sorted((p for p in tree.rglob("*") if p.is_file()), key=lambda p: p.relative_to(tree).as_posix())
    output.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=ZIP_TIME)
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=6)
    partial.replace(output)
    return unzipped, output.stat().st_size


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    """Build the zip, print its sizes against Lambda's limits; 1 when it is over the unzipped limit."""
    parser = argparse.ArgumentParser(prog="python3 deploy/lambda_zip.py", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("build/lambda/pipegen-runtime.zip"))
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="x86_64", help="the function's architecture")
    parser.add_argument("--keep-dir", type=Path, help="also leave the unzipped package in this (new) directory")
    parser.add_argument("--no-zip", action="store_true", help="write only --keep-dir (a container image's files)")
    ns = parser.parse_args(argv)
    if ns.no_zip and ns.keep_dir is None:
        parser.error("--no-zip needs --keep-dir")
    with tempfile.TemporaryDirectory(prefix="pipegen-lambda-tree-") as tmp:
        tree = ns.keep_dir or Path(tmp) / "package"
        if tree.exists() and any(tree.iterdir()):
            parser.error(f"--keep-dir {tree} is not empty")
        install(tree, ns.arch)
        if ns.no_zip:
            size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
            print(f"{tree}: handler {HANDLER}, python{PYTHON_VERSION} {ns.arch}, {_mb(size)}")
            return 0
        unzipped, zipped = write_zip(tree, ns.output)
    print(f"{ns.output}: handler {HANDLER}, python{PYTHON_VERSION} {ns.arch}")
    print(f"left out (the Lambda Python runtime provides them): {', '.join(sorted(LAMBDA_PROVIDED))}")
    print(f"unzipped {_mb(unzipped)} (limit {_mb(UNZIPPED_LIMIT)}), zipped {_mb(zipped)}", end="")
    print(" (over 50.0 MB: upload it through S3)" if zipped > DIRECT_UPLOAD_LIMIT else " (direct upload possible)")
    if unzipped > UNZIPPED_LIMIT:
        print(f"lambda_zip: {_mb(unzipped)} unzipped is over Lambda's {_mb(UNZIPPED_LIMIT)} limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
