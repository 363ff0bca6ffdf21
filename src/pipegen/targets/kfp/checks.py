"""What KFP cannot express: located diagnostics for a spec compiled with `-t kfp`."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.expr import Ref, parse_template
from pipegen.resolve import Pipeline
from pipegen.spec import KubernetesBackend
from pipegen.targets.kfp.containers import tracking_source
from pipegen.targets.kfp.launcher import launches
from pipegen.targets.kfp.names import WORKSPACE_PATH, step_refs
from pipegen.targets.kfp.options import KfpOptions
from pipegen.targets.tracking_secret import tracking_secret

# Text kfp replaces in the string value of any task input, whatever put it there: its placeholders' opening
# (kfp.local's resolver substitutes `{{$}}`, `{{$.pipeline_job_uuid}}`, `{{$.inputs.parameters['x']}}`...
# inside values) and kfp.local's workspace path.
KFP_SUBSTITUTED = ("{{$", WORKSPACE_PATH)


def runtime_steps(pipeline: Pipeline) -> list[str]:
    """The steps that run pipegen's runtime in a KFP component (all but plain container tasks)."""
    return [s.name for s in pipeline.steps if not (s.kind == "task" and isinstance(s.backend, KubernetesBackend))]


def uses_run_context(pipeline: Pipeline) -> bool:
    """Whether any step reads ${run.id} or ${run.date}, which the pipegen_context runtime component computes."""
    uri = pipeline.tracking_uri.refs if pipeline.tracking_uri is not None else ()
    return any(r.namespace == "run" for r in uri) or any(
        r.namespace == "run" for s in pipeline.steps for r in step_refs(s)
    )


def runtime_image(pipeline: Pipeline, options: KfpOptions) -> Iterator[Diagnostic]:
    """A spec with runtime components must name an image that has pipegen's runtime: there is no usable default."""
    if options.base_image is not None:
        if "{{" in options.base_image:
            yield diag(
                "PG602",
                f"target 'kfp' cannot use base_image '{options.base_image}': kfp reads '{{{{' in an image as a "
                "pipeline input placeholder",
                pipeline.source_map.value(("targets", "kfp", "base_image")),
                "an image reference has no braces: write it as registry/name:tag",
            )
        return
    steps = runtime_steps(pipeline)
    notifies = bool(pipeline.spec.notify.on_failure or pipeline.spec.notify.on_success)
    if not steps and not uses_run_context(pipeline) and not notifies:
        return
    smap = pipeline.source_map
    if ("targets", "kfp") in smap.values:
        where = smap.value(("targets", "kfp"))
    elif steps:
        where = pipeline.step(steps[0]).location
    else:
        where = smap.value(("notify",) if notifies else ("name",))
    what = f"step '{steps[0]}'" if steps else "the notify exit task" if notifies else "the ${run.*} context"
    yield diag(
        "PG604",
        f"target 'kfp' needs targets.kfp.base_image: {what} runs pipegen's runtime in a KFP component, and no "
        "public image has it",
        where,
        "build an image with pipegen-ml[runtime] installed and set targets: {kfp: {base_image: "
        "registry.example.com/ml/pipegen-runtime:0.1}} (your image's name)",
    )


def mlflow_settings(pipeline: Pipeline, options: KfpOptions) -> Iterator[Diagnostic]:
    """Warn when the tracking URI comes from a pod environment variable that nothing in the spec sets."""
    if not any(s.kind in ("train", "evaluate", "promote") for s in pipeline.steps):
        return
    uri = pipeline.tracking_uri
    if uri is None:
        variable = "MLFLOW_TRACKING_URI"  # the runtime's fallback when the spec names no tracking URI
    elif uri.single_ref is not None and uri.single_ref.namespace == "env":
        variable = uri.single_ref.name
    else:
        return
    sources = [s for s in (options.mlflow_secret, options.mlflow_config_map) if s is not None]
    if any(variable in s.keys for s in sources):
        return
    where = ("mlflow", "tracking_uri") if uri is not None else ("mlflow",)
    yield diag(
        "PG702",
        f"target 'kfp' sets nothing for {variable} in the pods that talk to MLflow: the tracking URI is read from "
        "the pod's environment, and runs fail unless the runtime image sets it",
        pipeline.source_map.value(where),
        f"mount it from a Kubernetes secret or config map: targets: {{kfp: {{mlflow_secret: {{name: mlflow, keys: "
        f"[{variable}]}}}}}} (add the credentials' keys, e.g. MLFLOW_TRACKING_TOKEN)",
    )


def tracking_placement(pipeline: Pipeline, options: KfpOptions) -> Iterator[Diagnostic]:
    """Where a training container's MLFLOW_TRACKING_URI can come from (start_run does not hand the URI on).

    A secret follows the shared rule (tracking_secret); ${env.X} is the pod's environment, which a container
    has only from targets.kfp.mlflow_secret / mlflow_config_map (or its image, for MLFLOW_TRACKING_URI itself).
    """
    yield from tracking_secret(pipeline, "kfp")
    uri = pipeline.tracking_uri
    if uri is None or not any(r.namespace == "env" for r in uri.refs):
        return
    ref = uri.single_ref
    if ref is not None and (ref.name == "MLFLOW_TRACKING_URI" or tracking_source(pipeline, options) is not None):
        return  # mounted as MLFLOW_TRACKING_URI, or (PG702 from mlflow_settings) left to the image
    for step in pipeline.steps:
        if step.kind != "train" or not (isinstance(step.backend, KubernetesBackend) or launches(step)):
            continue
        env_ref = next(r for r in uri.refs if r.namespace == "env")
        yield diag(
            "PG602",
            f"target 'kfp' cannot give container training step '{step.name}' the tracking URI: its pod does not "
            f"see the environment {env_ref} would come from",
            pipeline.source_map.value(("mlflow", "tracking_uri")),
            ("" if ref is not None else f"make the whole tracking_uri {env_ref} and ")
            + f"list {env_ref.name} in the keys of targets.kfp.mlflow_secret or mlflow_config_map (it is mounted "
            "as MLFLOW_TRACKING_URI), or write the URI literally, or as exactly ${secret.NAME}",
        )
        return


def limits(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """Every KFP-specific problem of a pipeline."""
    for name, value in pipeline.spec.params.items():
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            yield diag(
                "PG602",
                f"target 'kfp' cannot take a line break in the default of parameter '{name}'",
                pipeline.source_map.value(("params", name)),
                "kfp copies defaults into the IR's comment header, where a line break ends the comment",
            )
        if isinstance(value, str) and any(text in value for text in KFP_SUBSTITUTED):
            yield diag(
                "PG602",
                f"target 'kfp' cannot pass the default of parameter '{name}' unchanged: kfp substitutes "
                f"{' and '.join(repr(t) for t in KFP_SUBSTITUTED)} in every string parameter value it hands a task",
                pipeline.source_map.value(("params", name)),
                "kfp has no escape for its placeholders: write the value without them, or pass it when submitting",
            )
        if name.startswith("pipegen"):
            yield diag(
                "PG601",
                f"parameter name '{name}' uses the reserved prefix 'pipegen'",
                pipeline.source_map.key(("params", name)),
            )
    yield from _images(pipeline)
    for step in pipeline.steps:
        backend = step.backend
        if not isinstance(backend, KubernetesBackend):
            continue
        body = step.body
        for i, arg in enumerate(body.command):
            bad = [r for r in parse_template(arg).refs if r.namespace in ("secret", "env")]
            if bad:
                yield diag(
                    "PG602",
                    f"target 'kfp' cannot put {bad[0]} in the command of container step '{step.name}'",
                    pipeline.locate(step, step.kind, "command", i),
                    _command_hint(bad[0]),
                )
        for key, value in {**backend.env, **body.env}.items():
            template = parse_template(value)
            refs = [r for r in template.refs if r.namespace in ("secret", "env")]
            if refs and not (template.single_ref is not None and template.single_ref.namespace == "secret"):
                where = (step.kind, "env", key) if key in body.env else ()
                yield diag(
                    "PG602",
                    f"target 'kfp' can set {refs[0]} in container step '{step.name}' only as a whole "
                    "secret environment value",
                    pipeline.locate(step, *where) if where else step.location,
                    _env_hint(refs[0]),
                )
        if backend.service_account and not launches(step):  # the launcher's objects name it in their pods
            yield diag(
                "PG702",
                f"target 'kfp' sets the service account per run, not per step: 'service_account' of "
                f"step '{step.name}' is not applied",
                pipeline.source_map.value(("backends", str(step.backend_name), "service_account")),
                "pass the service account when submitting the run",
            )
    yield from condition_nesting(pipeline)


def _images(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """kfp reads `{{channel:...}}` and `{{$...}}` in a container image as pipeline inputs; an image name has no braces."""
    for name, backend in pipeline.spec.backends.items():
        if isinstance(backend, KubernetesBackend) and "{{" in backend.image:
            yield diag(
                "PG602",
                f"target 'kfp' cannot use image '{backend.image}' of backend '{name}': kfp reads '{{{{' in an image "
                "as a pipeline input placeholder",
                pipeline.source_map.value(("backends", name, "image")),
                "an image reference has no braces: write it as registry/name:tag",
            )


def _command_hint(ref: Ref) -> str:
    if ref.namespace == "secret":
        return f"pass it as an environment variable whose whole value is {ref} and let the program read that variable"
    return (
        f"a container step's command cannot read {ref.name} from an environment when the pipeline is compiled or "
        f"submitted: let the program read ${ref.name} from its own environment (the image's or the backend's "
        "`env`), or pass the value as a pipeline parameter, ${params.NAME}"
    )


def _env_hint(ref: Ref) -> str:
    if ref.namespace == "secret":
        return f"write the value as exactly {ref}, which mounts the Kubernetes secret"
    return (
        f"the container does not see the environment {ref} would come from: write the value literally, use a "
        "pipeline parameter (${params.NAME}), or exactly ${secret.NAME} for a Kubernetes secret"
    )


def skip_conditions(pipeline: Pipeline) -> dict[str, list[str]]:
    """For each step, the skip-on-fail evaluate steps it runs under, outermost first.

    Only those evaluations are propagated, not every ancestor (which grows with the square of a chain's
    length: 10,000 steps took 2.4 GB); a step whose upstream adds nothing shares its upstream's set.
    """
    position = {s.name: i for i, s in enumerate(pipeline.steps)}
    skips = {s.name for s in pipeline.steps if s.kind == "evaluate" and s.body.on_fail == "skip"}
    under: dict[str, frozenset[str]] = {}
    for step in pipeline.steps:
        sets = {under[u] | {u} if u in skips else under[u] for u in step.upstream}
        under[step.name] = sets.pop() if len(sets) == 1 else frozenset().union(*sets)
    # One sorted list per distinct set, shared by every step under it (callers only read them).
    ordered: dict[frozenset[str], list[str]] = {}
    for found in under.values():
        if found not in ordered:
            ordered[found] = sorted(found, key=position.__getitem__)
    return {name: ordered[found] for name, found in under.items()}


def condition_nesting(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """KFP tasks may read tasks of their own or enclosing dsl.If blocks only; emitting in order must keep blocks open."""
    conditions = skip_conditions(pipeline)
    open_blocks: list[str] = []
    block_of: dict[str, tuple[str, ...]] = {}
    closed: set[tuple[str, ...]] = set()
    current: tuple[str, ...] = ()
    for step in pipeline.steps:
        wanted = conditions[step.name]
        while open_blocks and open_blocks != wanted[: len(open_blocks)]:
            closed.add(tuple(open_blocks))
            open_blocks.pop()
        if len(open_blocks) < len(wanted):
            open_blocks.extend(wanted[len(open_blocks) :])
        if tuple(open_blocks) != current:  # built when the blocks change, shared by the steps inside them
            current = tuple(open_blocks)
        block_of[step.name] = current
        for up in step.upstream:
            if block_of[up] in closed or block_of[up] != block_of[step.name][: len(block_of[up])]:
                yield diag(
                    "PG602",
                    f"target 'kfp' cannot express step '{step.name}': it reads '{up}' across dsl.If blocks",
                    step.location,
                    "make steps that depend on an evaluate's outcome run after it, one branch at a time",
                )
