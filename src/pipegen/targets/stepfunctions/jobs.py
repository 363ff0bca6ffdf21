"""Job steps (Batch, SageMaker, EKS): the `.sync` Task, and the Lambda state that renders it when needed."""

from __future__ import annotations

from typing import Any

from pipegen.expr import Lit, parse_template
from pipegen.k8s.distributed import kubelet_text, toleration
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import AwsBatchBackend, KubernetesBackend, SageMakerBackend
from pipegen.targets.asl import Dialect, JsonPath, Read, Slot, Text, TextList
from pipegen.targets.base import kubernetes_name
from pipegen.targets.resources import batch_resources, kubernetes_cpu
from pipegen.targets.stepfunctions.nodes import is_distributed, node_command, node_env
from pipegen.targets.stepfunctions.options import StepFunctionsOptions


def literal(value: Any) -> Any:
    """What spec strings without references mean (`$${` is a literal `${`), for the definition itself."""
    if isinstance(value, list):
        return [literal(v) for v in value]
    return parse_template(value).literal_text()


class LoweringParts:
    """What the parts of the lowering mixed into it (JobStates, SparkStates) use of it: its state, the step's
    policy and runtime tasks (the Lowering defines them)."""

    p: Pipeline
    d: Dialect
    states: dict[str, dict[str, Any]]
    # Each step's Parallel branch path (empty: the top level), and where a failure at the top level goes.
    scope: dict[str, tuple[tuple[str, int], ...]]
    fail_entry: str

    def _policy(self, step: ResolvedStep, lambda_task: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _runtime_task(
        self,
        step: ResolvedStep,
        kind: str,
        spec: dict[str, Any],
        select: dict[str, str],
        store: Slot | None,
        comment: str,
        mlflow_run: str | None = None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _own(self, *path: str) -> Slot:
        raise NotImplementedError

    def _lambda(self, comment: str, args: dict[str, Any], select: dict[str, str], store: Slot | None) -> dict[str, Any]:
        raise NotImplementedError

    # ClosingStates' (closing.py): a train step's job ends through the states that end its MLflow run.
    def _end_job(
        self, step: ResolvedStep, state: str, task: dict[str, Any], policy: dict[str, Any], after: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def _closing_catch(self, step: ResolvedStep, next_state: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def _close_states(self, step: ResolvedStep, after: dict[str, Any]) -> None:
        raise NotImplementedError

    def _failure(self, step: ResolvedStep) -> Slot:
        raise NotImplementedError

    def _ignore(self, next_state: str) -> dict[str, Any]:
        """A catcher that goes on to next_state keeping the state data as it was (the recorded failure too)."""
        if isinstance(self.d, JsonPath):
            return {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": next_state}
        return self.d.catch(next_state, keep_failure=True)


class JobStates(LoweringParts):
    """The job part of the lowering (mixed into it: it needs the step's policy and runtime tasks)."""

    o: StepFunctionsOptions

    def _tracking(self) -> dict[str, str]:
        """The spec's tracking URI for a runtime request; none when the spec has none (the runtime reads
        MLFLOW_TRACKING_URI then), as an empty string is not a value asl-validator accepts in JSONata."""
        uri = self.p.spec.mlflow.tracking_uri
        return {"tracking_uri": uri} if uri else {}

    def _job(self, step: ResolvedStep, after: dict[str, Any]) -> None:
        """A job step: its `.sync` Task, after a Lambda state that renders it when it holds ${...}."""
        backend = step.backend
        body = step.body
        name = step.name
        env = {**getattr(backend, "env", {}), **body.env}
        command = list(body.command)
        nodes = is_distributed(step)
        if nodes and not isinstance(backend, KubernetesBackend):
            # SageMaker and Batch nodes start behind a launcher that reads the platform's rendezvous (nodes.py).
            command = node_command(step)
            env |= node_env(step)
        secret_env = {}
        if isinstance(backend, KubernetesBackend):
            for key, value in list(env.items()):
                ref = parse_template(value).single_ref
                if ref is not None and ref.namespace == "secret":
                    secret_env[key] = {"secret": kubernetes_name(ref.name), "key": ref.name}
                    del env[key]
            uri = self.p.tracking_uri
            tracking = uri.single_ref if uri is not None and step.kind == "train" else None
            if tracking is not None and tracking.namespace == "secret":
                # The pod reads the tracking URI from the Kubernetes secret: prepare leaves it out of the request.
                env.pop("MLFLOW_TRACKING_URI", None)
                secret_env["MLFLOW_TRACKING_URI"] = {"secret": kubernetes_name(tracking.name), "key": tracking.name}
        service = (
            "batch"
            if isinstance(backend, AwsBatchBackend)
            else "eks"
            if isinstance(backend, KubernetesBackend)
            else "sagemaker"
        )
        # A Batch command the state machine can build itself needs no Lambda hop (and its bytes).
        native = self._native_command(step, env) if service == "batch" and step.kind != "train" and not nodes else None
        dynamic = (
            step.kind == "train"
            or service == "sagemaker"
            or (native is None and any(parse_template(v).refs for v in [*command, *env.values()]))
            # A literal argument the query language cannot write in a list (JSONPath: an empty or
            # multi-line one, which asl-validator refuses there) is rendered by the Lambda too.
            or (native is None and not all(self.d.in_list(arg) for arg in literal(command)))
        )
        request: dict[str, Any] = {"service": service, "command": command, "env": dict(sorted(env.items()))}
        if secret_env:
            request["secret_env"] = secret_env
        if isinstance(backend, SageMakerBackend):
            request |= {"image": backend.image, "output_path": backend.output_path, "job_name": f"{self.p.name}-{name}"}
        if step.kind == "train":
            request["start_run"] = {
                "pipeline": self.p.name,
                "step": name,
                "spec_sha256": self.p.spec_sha256,
                "experiment": self.p.experiment,
            }
            request |= self._tracking()
        if nodes and isinstance(backend, KubernetesBackend):
            self._eks_nodes(step, dynamic, request, after)
            return
        job_state = name
        if dynamic:
            self.states[name] = self._prepare(step, request) | {"Next": f"{name}.job"}
            job_state = f"{name}.job"
        job = self._job_state(step, dynamic, request, native)
        self._end_job(step, job_state, job, self._policy(step, lambda_task=False), after)

    def _prepare(self, step: ResolvedStep, request: dict[str, Any]) -> dict[str, Any]:
        """The Lambda state that renders a job's request (and starts a train step's MLflow run)."""
        what = "start its MLflow run and render" if step.kind == "train" else "render"
        select = {"job": "job", "run": "run"} if step.kind == "train" else {"job": "job"}
        return self._runtime_task(
            step,
            "prepare",
            request,
            select,
            self._own("prepared", step.name),
            f"Step '{step.name}': {what} the job's command.",
        )

    def _eks_nodes(self, step: ResolvedStep, dynamic: bool, request: dict[str, Any], after: dict[str, Any]) -> None:
        raise NotImplementedError  # EksNodeStates (eks_nodes.py) defines it

    def _native_command(self, step: ResolvedStep, env: dict[str, str]) -> TextList | None:
        """A command with ${...} as run-time text, when the query language can build it; else None."""
        command = step.body.command
        if any(parse_template(v).refs for v in env.values()) or not any(parse_template(a).refs for a in command):
            return None
        items = []
        for arg in command:
            text = self._text(arg)
            if text is None:
                return None  # the prepare Lambda renders it
            items.append(text)
        return TextList(tuple(items))

    def _text(self, value: str) -> Text | None:
        """${run.*} and ${params.X} (not floats, whose text the languages write differently) inside literal text."""
        parts: list[str | Read] = []
        for part in parse_template(value).parts:
            if isinstance(part, Lit):
                if not self.d.holds_literal(part.text):
                    return None
                parts.append(part.text)
            elif part.namespace == "run":
                parts.append(Read(Slot(("pipegen", "run_date" if part.name == "date" else "run_id"))))
            elif part.namespace == "params" and not isinstance(self.p.spec.params.get(part.name), float):
                parts.append(Read(Slot(("pipegen", "params", part.name)), as_text=True))
            else:
                return None
        return Text(tuple(parts))

    def _job_state(
        self, step: ResolvedStep, dynamic: bool, request: dict[str, Any], native: TextList | None
    ) -> dict[str, Any]:
        # A `.sync` Task that times out (TimeoutSeconds) or whose execution is stopped has Step Functions stop
        # the job it started (batch:TerminateJob, sagemaker:StopTrainingJob, which the state machine's role
        # must allow); a Retry then starts a new job. moto does not model this, so it is not tested here.
        backend = step.backend
        name = step.name
        rendered = self._own("prepared", name, "job")
        params: dict[str, Any]
        comment = f"Step '{name}' on backend '{step.backend_name}'."
        if isinstance(backend, AwsBatchBackend):
            overrides: dict[str, Any]
            if dynamic:
                overrides = {"Command": rendered.field("Command"), "Environment": rendered.field("Environment")}
            else:
                overrides = {"Command": native if native is not None else literal(request["command"])}
                if request["env"]:
                    overrides["Environment"] = [{"Name": k, "Value": literal(v)} for k, v in request["env"].items()]
            resources = batch_resources(step.body.resources)
            if resources:
                overrides["ResourceRequirements"] = [{"Type": k, "Value": v} for k, v in resources.items()]
            params = {
                "JobName": f"{self.p.name}-{name}",
                "JobQueue": backend.job_queue,
                "JobDefinition": backend.job_definition,
            }
            dist = step.body.distributed
            if dist is not None:
                # A multi-node parallel job: every node (the range 0:) runs the same container (nodes.py).
                node = {"TargetNodes": "0:", "ContainerOverrides": overrides}
                params["NodeOverrides"] = {"NumNodes": dist.nodes, "NodePropertyOverrides": [node]}
            else:
                params["ContainerOverrides"] = overrides
            return {"Type": "Task", "Comment": comment, "Resource": "arn:aws:states:::batch:submitJob.sync"} | (
                self.d.task_io(params, {}, None)
            )
        if isinstance(backend, SageMakerBackend):
            params = {
                "TrainingJobName": rendered.field("TrainingJobName"),
                "AlgorithmSpecification": rendered.field("AlgorithmSpecification"),
                "Environment": rendered.field("Environment"),
                "RoleArn": backend.role_arn,
                "ResourceConfig": {
                    "InstanceType": backend.instance_type,
                    # distributed.nodes sets it (the checks refuse an instance_count that says otherwise).
                    "InstanceCount": step.body.distributed.nodes
                    if step.body.distributed is not None
                    else backend.instance_count,
                    "VolumeSizeInGB": 30,
                },
                "OutputDataConfig": rendered.field("OutputDataConfig"),
                "StoppingCondition": {"MaxRuntimeInSeconds": step.policy.timeout or 86400},
            }
            return {
                "Type": "Task",
                "Comment": comment,
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
            } | self.d.task_io(params, {}, None)
        assert isinstance(backend, KubernetesBackend) and self.o.eks_cluster is not None
        container: dict[str, Any] = {"name": "main", "image": parse_template(backend.image).literal_text()}
        if dynamic:
            container |= {"command": rendered.field("command"), "env": rendered.field("env")}
        else:
            # The kubelet expands $(VAR) and reads $$ as $: every $ is doubled (as prepare does for rendered text).
            container |= {
                "command": [kubelet_text(arg) for arg in literal(request["command"])],
                "env": [{"name": k, "value": kubelet_text(literal(v))} for k, v in request["env"].items()],
            }
        resources = step.body.resources
        if resources is not None:
            quantities: dict[str, str] = {}
            if resources.cpu is not None:
                quantities["cpu"] = kubernetes_cpu(resources.cpu)
            if resources.memory is not None:
                quantities["memory"] = resources.memory
            if resources.gpu:
                quantities["nvidia.com/gpu"] = str(resources.gpu)
            container["resources"] = {"requests": quantities, "limits": quantities}
        pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        if backend.service_account:
            pod["serviceAccountName"] = backend.service_account
        if backend.node_selector:
            pod["nodeSelector"] = dict(sorted(backend.node_selector.items()))
        if backend.tolerations:
            pod["tolerations"] = [toleration(t.model_dump(exclude_none=True)) for t in backend.tolerations]
        job_name = kubernetes_name(f"{self.p.name}-{name}")[:57]
        params = {
            "ClusterName": self.o.eks_cluster.name,
            "CertificateAuthority": self.o.eks_cluster.certificate_authority,
            "Endpoint": self.o.eks_cluster.endpoint,
            "Namespace": backend.namespace,
            "LogOptions": {"RetrieveLogs": False},
            "Job": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"generateName": f"{job_name}-"},
                # Step Functions retries the step; the Job itself does not retry.
                "spec": {"backoffLimit": 0, "template": {"spec": pod}},
            },
        }
        return {"Type": "Task", "Comment": comment, "Resource": "arn:aws:states:::eks:runJob.sync"} | self.d.task_io(
            params, {}, None
        )
