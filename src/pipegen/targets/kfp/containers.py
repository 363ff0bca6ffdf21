"""Container steps (kubernetes backend): a container component whose every argument and env value is an input."""

from __future__ import annotations

from pipegen.expr import Lit, parse_template
from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import KubernetesBackend
from pipegen.targets.base import kubernetes_name
from pipegen.targets.kfp.names import MLFLOW_INPUTS, ident, is_secret
from pipegen.targets.kfp.view import Component


class ContainerSteps:
    """The part of the lowering that builds container components and their kfp-kubernetes settings."""

    p: Pipeline
    uses_kubernetes: bool

    def _container(
        self, step: ResolvedStep, backend: KubernetesBackend, mlflow: bool
    ) -> tuple[Component, list[tuple[str, str]]]:
        """A container component whose every argument and env value is an input: constants stay data, never template."""
        body = step.body
        env = {**backend.env, **body.env}
        plain_env = sorted((k, v) for k, v in env.items() if not is_secret(v))
        # KFP substitutes `{{$.inputs.parameters['NAME']}}` one input at a time, also inside values already
        # substituted; so input names must not be ones the step's own text mentions.
        mentioned = " ".join([*body.command, *env.values()])
        suffix = ""
        while any(f"parameters['{p}{suffix}_" in mentioned for p in ("arg", "env")):
            suffix = f"{suffix}x"
        arg, env_name = f"arg{suffix}", f"env{suffix}"
        inputs: list[tuple[str, str]] = []
        kwargs: list[tuple[str, str]] = []
        exports: list[str] = []
        position = 1
        if mlflow:
            for name, var in zip(
                MLFLOW_INPUTS, ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_TRACKING_URI"), strict=True
            ):
                inputs.append((name, "str"))
                exports.append(f'{var}="${position}"')
                position += 1
        for i, (key, value) in enumerate(plain_env):
            inputs.append((f"{env_name}_{i}", "str"))
            kwargs.append((f"{env_name}_{i}", self._channel_string(value)))
            exports.append(f'{key}="${position}"')
            position += 1
        for i, value in enumerate(body.command):
            inputs.append((f"{arg}_{i}", "str"))
            kwargs.append((f"{arg}_{i}", self._channel_string(value)))
        # sh receives the values as positional parameters, so no value is ever parsed as shell text.
        script = (f"export {' '.join(exports)}; shift {position - 1}; " if exports else "") + 'exec "$@"'
        names = [n for n, _ in inputs if n.startswith(("pipegen_mlflow", f"{env_name}_"))]
        command = ["'sh'", "'-c'", py(script), "'pipegen'", *names, *(f"{arg}_{i}" for i in range(len(body.command)))]
        component_body = [
            "return dsl.ContainerSpec(",
            f"    image={py(backend.image.replace('$${', '${'))},",
            f"    command=[{', '.join(command)}],",
            ")",
        ]
        doc = f"{step.kind} step '{step.name}' of pipeline '{self.p.name}' in its own image."
        return Component(ident(step.name), "container", inputs, "dsl.ContainerSpec", py(doc), component_body), kwargs

    def _kubernetes_settings(self, step: ResolvedStep, backend: KubernetesBackend, var: str) -> list[str]:
        out: list[str] = []
        env = {**backend.env, **step.body.env}
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
        resources = step.body.resources
        if resources is not None:
            if resources.cpu is not None:
                cpu = py(str(resources.cpu) if isinstance(resources.cpu, str) else f"{resources.cpu:g}")
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

    def _channel_string(self, text: str) -> str:
        """Python source for a str input: a constant, or an f-string over pipeline channels."""
        template = parse_template(text)
        if template.is_literal:
            return py(template.literal_text())
        pieces = []
        for part in template.parts:
            if isinstance(part, Lit):
                pieces.append(part.text.replace("{", "{{").replace("}", "}}"))
            elif part.namespace == "params":
                pieces.append("{" + part.name + "}")
            elif part.namespace == "run":
                pieces.append("{run_key}" if part.name == "id" else "{run_date}")
        # repr of the joined text, then turned into an f-string: quotes and backslashes stay escaped.
        return "f" + py("".join(pieces))
