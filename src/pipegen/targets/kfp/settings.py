"""Per-task settings: caching, retries, pod deadlines, and the Kubernetes secrets and config maps a task reads."""

from __future__ import annotations

from pipegen.render import py
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.runtime.templating import secret_env_name
from pipegen.spec import KubernetesBackend
from pipegen.targets.base import gate_deadline_seconds, judged_in_runtime_deadline_seconds, kubernetes_name
from pipegen.targets.kfp.launcher import launches
from pipegen.targets.kfp.names import step_refs
from pipegen.targets.kfp.options import KfpOptions


class TaskSettings:
    """The part of the lowering that writes the lines configuring a task after it is called."""

    p: Pipeline
    options: KfpOptions
    uses_kubernetes: bool

    def _settings(self, step: ResolvedStep, var: str) -> list[str]:
        out = [f"{var}.set_caching_options(False)"]
        policy = step.policy
        # set_retry cannot tell a failed judgement (final) from an unreachable server: evaluate retries
        # infrastructure errors inside the runtime instead (the retry in its spec, Lowering._step).
        if policy.retries and step.kind != "evaluate":
            factor = "2.0" if policy.backoff == "exponential" else "1.0"
            retry = f"{var}.set_retry(num_retries={policy.retries}, backoff_duration={py(f'{policy.retry_delay}s')}, backoff_factor={factor}"
            if policy.max_retry_delay is not None:
                retry += f", backoff_max_duration={py(f'{policy.max_retry_delay}s')}"
            out.append(retry + ")")
        # A waiting gate's pod must outlive its whole wait, whatever the step's timeout says.
        deadline = gate_deadline_seconds(step)
        if step.kind == "evaluate":
            deadline = judged_in_runtime_deadline_seconds(step)  # its retries run inside one pod
        if deadline is not None:
            self.uses_kubernetes = True
            out.append(f"kubernetes.set_timeout({var}, {deadline})")
        if step.kind in ("train", "evaluate", "promote"):
            out += self._mlflow_env(var)
        # Runtime components read secrets as PIPEGEN_SECRET_<NAME>; container steps mount them under their own names.
        # A launcher step's objects read their secrets themselves (secretKeyRef): its task renders none.
        own_pods = isinstance(step.backend, KubernetesBackend) or launches(step)
        runtime_secrets = set() if own_pods else {r.name for r in step_refs(step) if r.namespace == "secret"}
        if step.kind in ("train", "evaluate", "promote") and not own_pods:
            runtime_secrets |= self._tracking_secrets()
        return out + self._runtime_secret_env(var, runtime_secrets)

    def _tracking_secrets(self) -> set[str]:
        """The secrets mlflow.tracking_uri reads: every task that renders it mounts them."""
        uri = self.p.tracking_uri
        return {r.name for r in uri.refs if r.namespace == "secret"} if uri is not None else set()

    def _runtime_secret_env(self, var: str, names: set[str]) -> list[str]:
        """Mount each secret as PIPEGEN_SECRET_<NAME>, where a runtime component reads it."""
        out = []
        for name in sorted(names):
            self.uses_kubernetes = True
            out.append(
                f"kubernetes.use_secret_as_env({var}, secret_name={py(kubernetes_name(name))}, "
                f"secret_key_to_env={{{py(name)}: {py(secret_env_name(name))}}})"
            )
        return out

    def _mlflow_env(self, var: str) -> list[str]:
        """MLflow settings from targets.kfp.mlflow_secret / mlflow_config_map, on a task that talks to MLflow."""
        out: list[str] = []
        for source, call, argument in (
            (self.options.mlflow_secret, "use_secret_as_env", "secret"),
            (self.options.mlflow_config_map, "use_config_map_as_env", "config_map"),
        ):
            if source is not None:
                self.uses_kubernetes = True
                keys = "{" + ", ".join(f"{py(k)}: {py(k)}" for k in sorted(source.keys)) + "}"
                out.append(f"kubernetes.{call}({var}, {argument}_name={py(source.name)}, {argument}_key_to_env={keys})")
        return out
