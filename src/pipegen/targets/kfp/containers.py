"""Container steps (kubernetes backend): a container component whose every argument and env value is an input."""

from __future__ import annotations

from pipegen.expr import Lit, Ref, parse_template
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend
from pipegen.spec.limits import quantity_value
from pipegen.targets.base import kubernetes_name
from pipegen.targets.kfp.names import MLFLOW_INPUTS, ident, is_secret, kfp_text
from pipegen.targets.kfp.options import KfpOptions
from pipegen.targets.kfp.view import Component

# sh: _pg_v becomes $1 with kfp_text's escapes undone (%25 -> %, %7B -> {, %2F -> /), left to right.
_DECODE = (
    "_pg_d() { _pg_r=; _pg_s=$1; while :; do case $_pg_s in *%*) _pg_r=$_pg_r${_pg_s%%[%]*}; "
    "_pg_s=${_pg_s#*[%]}; case $_pg_s in 7B*) _pg_r=$_pg_r{;; 2F*) _pg_r=$_pg_r/;; *) _pg_r=$_pg_r%;; esac; "
    "_pg_s=${_pg_s#??};; *) break;; esac; done; _pg_v=$_pg_r$_pg_s; }"
)


def kfp_cpu(cpu: float | str) -> str:
    """A CPU amount in the form kfp's set_cpu_request takes: whole cores, or millicores ('500m').

    The spec takes any Kubernetes quantity ('1k', '0.5', '1Gi'); kfp takes only a number or 'N' + 'm'.
    """
    cores = quantity_value(cpu) if isinstance(cpu, str) else float(cpu)
    assert cores is not None, cpu  # the spec's pattern admits quantities only
    millicores = round(cores * 1000)  # the spec refuses amounts finer than a millicore
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def tracking_source(pipeline: Pipeline, options: KfpOptions) -> tuple[str, str, str] | None:
    """Where a tracking URI that is exactly ${env.X} comes from in a pod: ("secret" or "config_map", name, X).

    None when the URI is not exactly ${env.X} or neither targets.kfp.mlflow_secret nor mlflow_config_map has X.
    """
    uri = pipeline.tracking_uri
    ref = uri.single_ref if uri is not None else None
    if ref is None or ref.namespace != "env":
        return None
    for kind, source in (("secret", options.mlflow_secret), ("config_map", options.mlflow_config_map)):
        if source is not None and ref.name in source.keys:
            return kind, source.name, ref.name
    return None


class ContainerSteps:
    """The part of the lowering that builds container components and their kfp-kubernetes settings."""

    p: Pipeline
    options: KfpOptions
    uses_kubernetes: bool

    def _container_env(self, step: ResolvedStep, backend: KubernetesBackend) -> dict[str, str]:
        """The pod's environment as spec strings: the backend's, the step's, and a training step's tracking URI.

        The URI is the spec's, set here (start_run does not hand it on: it may hold credentials): as text built
        from inputs, or exactly ${secret.NAME} from the Kubernetes secret. From ${env.X} it is mounted from
        targets.kfp.mlflow_secret / mlflow_config_map (_tracking_mount); checks.tracking_secret refuses the rest.
        """
        env = {**backend.env, **step.body.env}
        uri = self.p.tracking_uri
        if step.kind != "train" or uri is None:
            return env
        if any(r.namespace == "env" for r in uri.refs):
            if tracking_source(self.p, self.options) is not None:  # mounted as MLFLOW_TRACKING_URI: the spec's wins
                env.pop("MLFLOW_TRACKING_URI", None)
            return env
        return env | {"MLFLOW_TRACKING_URI": str(self.p.spec.mlflow.tracking_uri)}

    def _tracking_mount(self, var: str) -> str | None:
        """kfp-kubernetes mounting ${env.X} of targets.kfp.mlflow_secret / mlflow_config_map as MLFLOW_TRACKING_URI.

        None when X is MLFLOW_TRACKING_URI itself (TaskSettings._mlflow_env mounts it under its own name) or
        when neither source has X (checks.tracking_secret).
        """
        found = tracking_source(self.p, self.options)
        if found is None or found[2] == "MLFLOW_TRACKING_URI":
            return None
        kind, name, key = found
        return f"kubernetes.use_{kind}_as_env({var}, {kind}_name={py(name)}, {kind}_key_to_env={{{py(key)}: 'MLFLOW_TRACKING_URI'}})"

    def _container(
        self, step: ResolvedStep, backend: KubernetesBackend, mlflow: bool
    ) -> tuple[Component, list[tuple[str, str]]]:
        """A container component whose every argument and env value is built from inputs by sh.

        kfp resolves placeholders (`{{$}}`, `{{$.pipeline_job_uuid}}`, `{{$.inputs.parameters['x']}}`, and
        kfp.local's `/kfp-workspace`) inside every string input value and has no escape for them; so the
        literal text of a value travels percent-encoded (kfp_text) and sh decodes it in the container, and each
        ${...} reference is an input of its own that sh appends as it is.
        """
        body = step.body
        env = self._container_env(step, backend)
        plain_env = sorted((k, v) for k, v in env.items() if not is_secret(v))
        # KFP substitutes `{{$.inputs.parameters['NAME']}}` one input at a time, also inside values already
        # substituted (a run's parameter value); so input names must not be ones the step's own text mentions.
        mentioned = " ".join([*body.command, *env.values()])
        suffix = ""
        while any(f"parameters['{p}{suffix}_" in mentioned for p in ("arg", "env")):
            suffix = f"{suffix}x"
        arg, env_name = f"arg{suffix}", f"env{suffix}"
        inputs: list[tuple[str, str]] = []
        kwargs: list[tuple[str, str]] = []
        script = [_DECODE]
        exports: list[str] = []
        if mlflow:
            for name, var in zip(MLFLOW_INPUTS, ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"), strict=True):
                inputs.append((name, "str"))
                exports.append(f'{var}="${{{len(inputs)}}}"')
        for i, (key, value) in enumerate(plain_env):
            script.append(self._assemble(f"_pg_e{i}", f"{env_name}_{i}", value, inputs, kwargs))
            exports.append(f'{key}="$_pg_e{i}"')
        for i, value in enumerate(body.command):
            script.append(self._assemble(f"_pg_a{i}", f"{arg}_{i}", value, inputs, kwargs))
        # sh receives the values as positional parameters, so no value is ever parsed as shell text.
        if exports:
            script.append(f"export {' '.join(exports)}")
        script.append("set -- " + " ".join(f'"$_pg_a{i}"' for i in range(len(body.command))))
        script.append('exec "$@"')
        command = ["'sh'", "'-c'", py("; ".join(script)), "'pipegen'", *(name for name, _ in inputs)]
        component_body = [
            "return dsl.ContainerSpec(",
            f"    image={py(backend.image.replace('$${', '${'))},",
            f"    command=[{', '.join(command)}],",
            ")",
        ]
        doc = f"{step.kind} step '{step.name}' of pipeline '{self.p.name}' in its own image."
        return Component(ident(step.name), "container", inputs, "dsl.ContainerSpec", py(doc), component_body), kwargs

    def _assemble(
        self, var: str, prefix: str, text: str, inputs: list[tuple[str, str]], kwargs: list[tuple[str, str]]
    ) -> str:
        """sh that sets var to text: its literal pieces decoded, its references as they arrive; adds the inputs."""
        steps = [f"{var}="]
        for j, part in enumerate(parse_template(text).parts):
            name = f"{prefix}_{j}"
            inputs.append((name, "str"))
            position = f'"${{{len(inputs)}}}"'
            if isinstance(part, Lit):
                kwargs.append((name, py(kfp_text(part.text))))
                steps.append(f"_pg_d {position}; {var}=${var}$_pg_v")
            else:
                kwargs.append((name, self._reference(part)))
                steps.append(f"{var}=${var}{position}")
        return "; ".join(steps)

    def _reference(self, ref: Ref) -> str:
        """Python source for the pipeline channel a ${params.X} / ${run.*} reference reads, as a str."""
        if ref.namespace == "params":
            return "f" + py("{" + ref.name + "}")
        assert ref.namespace == "run", ref  # checks.limits refuses env and secret references here
        return "run_key" if ref.name == "id" else "run_date"

    def _kubernetes_settings(self, step: ResolvedStep, backend: KubernetesBackend, var: str) -> list[str]:
        out: list[str] = []
        env = self._container_env(step, backend)
        mount = self._tracking_mount(var) if step.kind == "train" else None
        if mount is not None:
            self.uses_kubernetes = True
            out.append(mount)
        for key, value in sorted(env.items()):
            ref = parse_template(value).single_ref
            if ref is not None and ref.namespace == "secret":
                self.uses_kubernetes = True
                out.append(
                    f"kubernetes.use_secret_as_env({var}, secret_name={py(kubernetes_name(ref.name))}, "
                    f"secret_key_to_env={{{py(ref.name)}: {py(key)}}})"
                )
        for key, value in sorted(backend.node_selector.items()):
            self.uses_kubernetes = True
            out.append(f"kubernetes.add_node_selector({var}, label_key={py(key)}, label_value={py(value)})")
        for toleration in backend.tolerations:
            self.uses_kubernetes = True
            fields = ", ".join(f"{k}={py(v)}" for k, v in sorted(toleration.model_dump(exclude_none=True).items()))
            out.append(f"kubernetes.add_toleration({var}, {fields})")
        resources = step.body.resources
        if resources is not None:
            if resources.cpu is not None:
                cpu = py(kfp_cpu(resources.cpu))
                out += [f"{var}.set_cpu_request({cpu})", f"{var}.set_cpu_limit({cpu})"]
            if resources.memory is not None:
                out += [
                    f"{var}.set_memory_request({py(resources.memory)})",
                    f"{var}.set_memory_limit({py(resources.memory)})",
                ]
            if resources.gpu:
                out += [
                    f"{var}.set_accelerator_type('nvidia.com/gpu')",
                    f"{var}.set_accelerator_limit({resources.gpu})",
                ]
        return out
