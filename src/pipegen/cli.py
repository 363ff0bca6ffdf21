"""The `pipegen` command line: a thin layer over the stages; exit codes 0 clean, 1 errors, 2 usage."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from pipegen import __version__
from pipegen.diagnostics import Diagnostic, has_errors
from pipegen.emit import Output
from pipegen.report import FORMATS, render

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
# 128 + SIGINT, as shells report a command ended by Ctrl-C.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad command line; exits 2."""


def _emit_diagnostics(diags: Sequence[Diagnostic], fmt: str, stream: TextIO) -> None:
    stream.write(render(diags, fmt))


def spec_paths(args: Sequence[str]) -> list[str]:
    """The spec files named on the command line: a directory stands for the *.yaml and *.yml files in it."""
    paths: list[str] = []
    for arg in args:
        if not os.path.isdir(arg):
            paths.append(arg)
            continue
        found = sorted(
            entry.path for entry in os.scandir(arg) if entry.name.endswith((".yaml", ".yml")) and entry.is_file()
        )
        if not found:
            raise UsageError(f"no specs (*.yaml, *.yml) in directory '{arg}'")
        paths.extend(found)
    return list(dict.fromkeys(paths))


def cmd_validate(args: argparse.Namespace) -> int:
    """Check specs and print every diagnostic."""
    from pipegen.frontend import check_file

    specs = spec_paths(args.specs)
    diags: list[Diagnostic] = []
    for path in specs:
        diags.extend(check_file(path).diagnostics)
    _emit_diagnostics(diags, args.format, sys.stdout)
    if not diags and args.format in ("text", "github"):
        print(f"{len(specs)} spec{'s' if len(specs) != 1 else ''} valid")
    return EXIT_ERRORS if has_errors(diags) else EXIT_OK


def _target_names(requested: list[str]) -> list[str]:
    from pipegen.targets import available

    names = list(available())
    chosen: list[str] = []
    for item in requested:
        for name in item.split(","):
            if name == "all":
                chosen.extend(names)
            elif name in names:
                chosen.append(name)
            else:
                raise UsageError(f"unknown target '{name}' (available: {', '.join([*names, 'all'])})")
    if not chosen:
        raise UsageError("no target available to compile for")
    return list(dict.fromkeys(chosen))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Python's cyclic collector run rarely, for the length of the block.

    A compile allocates many small objects that live until it ends (models, steps, rendered lines): the default
    threshold runs a collection every 700 allocations, over a heap with nothing to free. mypy raises the first
    generation's threshold the same way. The previous thresholds come back for a caller in the same process.
    """
    before = gc.get_threshold()
    gc.set_threshold(200_000, 30, 30)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def cmd_compile(args: argparse.Namespace) -> int:
    """Compile specs for targets; write all outputs or none, or compare them with --check."""
    with _few_collections():
        return _compile(args)


def _compile(args: argparse.Namespace) -> int:
    from pipegen.compiler import combine_outputs, compile_checked
    from pipegen.emit import WriteError, stale_outputs, write_outputs
    from pipegen.frontend import check_file
    from pipegen.lowering import usable_cores

    jobs = args.jobs or usable_cores()

    targets = _target_names(args.target)
    if args.ir and "kfp" in targets:
        import importlib.util

        if importlib.util.find_spec("kfp") is None:
            raise UsageError("--ir compiles with kfp, which is not installed here (pip install kfp==2.17.0)")
    outputs: list[Output] = []
    diags: list[Diagnostic] = []
    for path in spec_paths(args.specs):
        result = compile_checked(check_file(path), targets, frozenset({"ir"}) if args.ir else frozenset(), jobs)
        diags.extend(result.diagnostics)
        outputs.extend(result.outputs)
    # Diagnostics go to stderr (stdout carries --check's diff); the Actions runner reads commands on both.
    _emit_diagnostics(diags, args.format, sys.stderr)
    if has_errors(diags):
        return EXIT_ERRORS
    outputs = combine_outputs(outputs, targets)
    _refuse_collisions(outputs)
    outdir = Path(args.output)
    if args.check:
        diffs = stale_outputs(outdir, outputs)
        for diff in diffs:
            sys.stdout.write(diff)
        if diffs:
            print(
                f"{len(diffs)} of {len(outputs)} outputs are stale; run the same command without --check",
                file=sys.stderr,
            )
            return EXIT_ERRORS
        print(f"{len(outputs)} outputs up to date", file=sys.stderr)
        return EXIT_OK
    try:
        written = write_outputs(outdir, outputs)
    except WriteError as exc:
        print(f"pipegen: error: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    for dest in written:
        print(f"wrote {dest}", file=sys.stderr)
    return EXIT_OK


def _refuse_collisions(outputs: Sequence[Output]) -> None:
    seen: set[str] = set()
    for out in outputs:
        if out.path in seen:
            raise UsageError(f"two specs write the same output '{out.path}': give each pipeline its own 'name'")
        seen.add(out.path)


def cmd_graph(args: argparse.Namespace) -> int:
    """Print the step graph."""
    from pipegen.draw import draw
    from pipegen.frontend import check_file

    checked = check_file(args.spec)
    _emit_diagnostics(checked.diagnostics, "text", sys.stderr)
    if not checked.ok or checked.spec is None or checked.graph is None:
        return EXIT_ERRORS
    sys.stdout.write(draw(checked.spec, checked.graph, args.format))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run the pipeline here: local steps as processes, AWS jobs submitted and awaited, sqlite MLflow by default."""
    from datetime import date

    from pipegen.compiler import repo_relative
    from pipegen.frontend import check_file
    from pipegen.localrun import (
        LocalRun,
        coerce_param,
        default_parallelism,
        default_tracking_uri,
        run_key_for,
        unsupported_backends,
    )
    from pipegen.localrun.progress import Progress, summary
    from pipegen.resolve import resolve
    from pipegen.runtime.redact import redact
    from pipegen.runtime.step import run_date_from
    from pipegen.runtime.templating import Values

    parallelism = default_parallelism()
    if args.parallelism is not None:
        try:
            parallelism = int(args.parallelism)
        except ValueError:
            parallelism = 0
        if parallelism < 1:
            raise UsageError(f"--parallelism takes a number of steps, at least 1; got '{args.parallelism}'")
    checked = check_file(args.spec)
    _emit_diagnostics(checked.diagnostics, "text", sys.stderr)
    if not checked.ok or checked.spec is None:
        return EXIT_ERRORS
    pipeline = resolve(checked, repo_relative(args.spec))
    problems = unsupported_backends(pipeline)
    if problems:
        _emit_diagnostics(problems, "text", sys.stderr)
        return EXIT_ERRORS
    params = dict(checked.spec.params)
    for item in args.param:
        key, sep, raw = item.partition("=")
        if not sep or key not in params:
            known = ", ".join(params) or "none"
            raise UsageError(f"--param takes NAME=VALUE with a declared parameter (declared: {known}); got '{item}'")
        try:
            params[key] = coerce_param(key, raw, params[key])
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        # Today in the schedule's timezone (UTC without one), as a manual run on every target takes it.
        zone = pipeline.schedule.timezone if pipeline.schedule is not None else "UTC"
        run_date = date.fromisoformat(args.date) if args.date else date.fromisoformat(run_date_from("", zone))
    except ValueError:
        raise UsageError(f"--date takes YYYY-MM-DD; got '{args.date}'") from None
    # MLflow's INFO lines (store migrations, registry waits) are not pipegen's to print; warnings still are.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    values = Values(params, run_key_for(run_date), run_date.isoformat(), dict(os.environ))
    tracking_uri = args.tracking_uri
    if not tracking_uri and pipeline.tracking_uri is not None:
        try:
            tracking_uri = values.text(pipeline.tracking_uri)
        except Exception:  # noqa: BLE001 - an unset ${env.X} in tracking_uri means: use the embedded default
            tracking_uri = ""
    tracking_uri = tracking_uri or default_tracking_uri(Path.cwd())
    print(
        redact(f"running {pipeline.name} ({len(pipeline.steps)} steps) as {values.run_id}; MLflow: {tracking_uri}"),
        file=sys.stderr,
    )
    run = LocalRun(pipeline, values, tracking_uri, Progress(sys.stderr), parallelism=parallelism)
    # SIGTERM (a CI job cancelled, `kill`) ends the run as Ctrl-C does: steps stopped, runs closed, a summary.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        outcomes = run.execute()
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.stdout.write(summary(pipeline.name, outcomes, tracking_uri))
    if run.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ERRORS if any(o.status == "failed" for o in outcomes) else EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starter spec for one backend type, checked before it is written."""
    from pipegen.compiler import compile_checked
    from pipegen.emit import WriteError, write_outputs
    from pipegen.frontend import check_source
    from pipegen.loader import Source
    from pipegen.spec import backend_variant
    from pipegen.starter import SCHEMA_FILE, schema_reference, starter_spec
    from pipegen.targets import available

    dest = Path(args.output or f"specs/{args.name}.yaml")
    try:
        text = starter_spec(args.name, args.backend, schema_reference(dest, args.schema))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if dest.exists() and not args.force:
        raise UsageError(f"'{dest}' exists; pass --force to overwrite it")
    checked = check_source(Source(dest.as_posix(), text))
    if not checked.ok:
        # A starter that does not validate is pipegen's bug, not the user's: nothing is written.
        _emit_diagnostics(checked.diagnostics, "text", sys.stderr)
        return EXIT_INTERNAL
    compiles: list[str] = []
    refused: list[str] = []
    # The way the starter's backend runs (e.g. spark platform: submit): a target that runs the type another way
    # (Step Functions runs Spark on EMR or Glue only) does not run this starter.
    variants = {v[0] for b in (checked.spec.backends.values() if checked.spec else ()) if (v := backend_variant(b))}
    for name, target in available().items():
        if args.backend not in target.support.backends or not variants <= target.support.variants.keys():
            continue
        result = compile_checked(checked, [name])
        (compiles if result.ok else refused).append(name)
        _emit_diagnostics([d for d in result.diagnostics if d not in checked.diagnostics], "text", sys.stderr)
    try:
        write_outputs(dest.parent, [Output(dest.name, text)])
    except WriteError as exc:
        print(f"pipegen: error: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    print(f"wrote {dest}", file=sys.stderr)
    if compiles:
        print(f"it compiles for: {', '.join(compiles)} (pipegen compile {dest} -t TARGET -o DIR)", file=sys.stderr)
    if not compiles and not refused:
        print(f"no target runs backend type '{args.backend}' yet: see `pipegen targets`", file=sys.stderr)
    if args.schema == SCHEMA_FILE and not Path(SCHEMA_FILE).is_file():
        print(
            f"for editor checks, write the schema its first line names: pipegen schema > {SCHEMA_FILE}", file=sys.stderr
        )
    return EXIT_ERRORS if refused else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of the spec format."""
    from pipegen.schema import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    """Print what each target supports, and the options it takes under `targets:`."""
    from pipegen.matrix import target_options
    from pipegen.targets import available

    targets = available()
    if args.format == "markdown":
        from pipegen.matrix import support_markdown

        sys.stdout.write(support_markdown(targets))
        return EXIT_OK
    if args.format == "json":
        doc = {
            name: {
                "title": t.title,
                "backends": t.support.backends,
                "gates": t.support.gates,
                "features": t.support.features,
                "variants": t.support.variants,
                "options": {
                    o.name: {"type": o.type, "required": o.required, "description": o.description}
                    | ({} if o.required else {"default": o.default})
                    for o in target_options(t)
                },
            }
            for name, t in targets.items()
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
        return EXIT_OK
    if not targets:
        print("no targets installed")
    for name, t in targets.items():
        print(f"{name}: {t.title}")
        for section, table in (
            ("backends", t.support.backends),
            ("variants", t.support.variants),
            ("gates", t.support.gates),
            ("features", t.support.features),
        ):
            if section == "variants" and not table:
                continue  # a target that maps no spark or ray backend
            print(f"  {section}:")
            width = max((len(k) for k in table), default=0)
            for key, how in table.items():
                print(f"    {key.ljust(width)}  {how}")
        options = target_options(t)
        print(f"  options (targets: {{{name}: {{...}}}}):" if options else "  options: none")
        width = max((len(o.name) for o in options), default=0)
        for o in options:
            print(f"    {o.name.ljust(width)}  {o.type}, {'required' if o.required else 'default ' + o.default_text}")
            if o.description:
                print(f"    {''.ljust(width)}  {o.description}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="pipegen", description="Compile ML pipeline specs for Airflow, KFP and Step Functions."
    )
    parser.add_argument("--version", action="version", version=f"pipegen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check specs and print diagnostics")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="a spec file, or a directory of them")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="json for tools, sarif for code scanning, github for GitHub Actions annotations",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compile", help="write the pipeline for a target")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="a spec file, or a directory of them")
    p.add_argument(
        "-t",
        "--target",
        action="append",
        required=True,
        metavar="TARGET",
        help="a target name or 'all' (repeatable, or comma-separated)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff when DIR is stale")
    p.add_argument(
        "--format",
        choices=("text", "github"),
        default="text",
        help="how diagnostics are printed: github for GitHub Actions annotations",
    )
    p.add_argument(
        "--ir", action="store_true", help="kfp: also write the IR YAML compiled by kfp (needs kfp installed)"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="lower up to N targets at a time, in worker processes, for a spec of 200 steps or more "
        "(default: the cores this process may use; 1: all in this process)",
    )
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("graph", help="draw the step graph")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--format", choices=("mermaid", "dot", "json"), default="mermaid")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser(
        "run", help="run the pipeline here (local steps as processes, AWS Batch/SageMaker jobs; sqlite MLflow)"
    )
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI (default: sqlite:///mlflow.db here)")
    p.add_argument("--date", metavar="YYYY-MM-DD", help="the run's logical date, ${run.date} (default: today)")
    p.add_argument(
        "--parallelism",
        metavar="N",
        help="run at most N independent steps at once (default: the number of CPUs; 1 runs them one by one)",
    )
    p.set_defaults(func=cmd_run)

    from pipegen.starter import SCHEMA_FILE, backend_types

    p = sub.add_parser("init", help="write a starter spec for a backend type")
    p.add_argument("name", metavar="NAME", help="the pipeline's name: [a-z][a-z0-9-]*")
    p.add_argument(
        "--backend", required=True, choices=backend_types(), metavar="TYPE", help="the training backend type"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: specs/NAME.yaml)")
    p.add_argument(
        "--schema",
        default=SCHEMA_FILE,
        metavar="PATH|URL",
        help=f"the JSON Schema its yaml-language-server modeline names (default: {SCHEMA_FILE}; '' for none)",
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("schema", help="print the JSON Schema of the spec format")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("targets", help="list what each target supports")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.set_defaults(func=cmd_targets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"pipegen: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - the last line of defence: never a bare traceback for users
        from pipegen.runtime.redact import redact

        print("pipegen: internal error (this is a bug in pipegen; please report it with the spec):", file=sys.stderr)
        print(redact(traceback.format_exc(limit=-3)), end="", file=sys.stderr)  # `pipegen run` renders secrets
        return EXIT_INTERNAL
