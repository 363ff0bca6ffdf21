"""Checks on multi-node steps (`distributed:`): a backend that runs nodes, and what each node needs."""

from __future__ import annotations

from collections.abc import Iterator

from pipegen.checks import CheckContext, check
from pipegen.diagnostics import Diagnostic, diag
from pipegen.spec import KubernetesBackend, SageMakerBackend

# Backend types that run N nodes of one command: Kubernetes (Indexed Job, JobSet, TrainJob), AWS Batch (multi-node
# parallel jobs), SageMaker (InstanceCount) and `local` (`pipegen run` starts the nodes here). Spark and Ray scale
# on their own: their executors or workers are the nodes.
NODE_BACKENDS = ("kubernetes", "aws_batch", "sagemaker", "local")
# Backends whose pods or containers get exactly the resources the step asks for: P processes need P of something.
SIZED_BY_RESOURCES = ("kubernetes", "aws_batch")


@check
def distributed_steps(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A distributed step runs on a backend that runs nodes, sized for its processes."""
    for i, step in enumerate(ctx.spec.steps):
        body = step.task or step.train
        if body is None or body.distributed is None:
            continue
        dist = body.distributed
        kind = step.kind
        name = body.backend or "local"
        backend = ctx.spec.backends.get(name)
        btype = backend.type if backend is not None else "local" if body.backend is None else None
        if btype is None:
            continue  # an unknown backend: PG303 says so
        if btype not in NODE_BACKENDS:
            yield diag(
                "PG400",
                f"step '{step.name}' is distributed over {dist.nodes} nodes, but {btype} backend '{name}' scales on "
                f"its own (its {'executors' if btype == 'spark' else 'workers'} are the nodes)",
                ctx.step_at(i, kind, "distributed"),
                f"remove 'distributed' and size the {btype} backend, or run the step on a kubernetes, aws_batch, "
                "sagemaker or local backend",
            )
            continue
        if (
            isinstance(backend, SageMakerBackend)
            and "instance_count" in backend.model_fields_set
            and backend.instance_count != dist.nodes
        ):
            yield diag(
                "PG400",
                f"step '{step.name}' asks for {dist.nodes} nodes, but SageMaker backend '{name}' sets "
                f"instance_count: {backend.instance_count}",
                ctx.step_at(i, kind, "distributed", "nodes"),
                "remove instance_count from the backend: distributed.nodes sets it",
            )
        resources = body.resources
        sized = resources is not None and (resources.gpu or resources.cpu is not None)
        if btype in SIZED_BY_RESOURCES and (dist.procs_per_node or 1) > 1 and not sized:
            yield diag(
                "PG400",
                f"step '{step.name}' starts {dist.procs_per_node} processes per node, but asks its {btype} backend "
                "for no resources: each node would get the platform's default share",
                ctx.step_at(i, kind, "distributed", "procs_per_node"),
                f"add resources: {{gpu: {dist.procs_per_node}}} (one process per GPU) or a cpu count to the step",
            )
        mpi_without_launcher_pod = (
            dist.launcher == "mpi"
            and isinstance(backend, KubernetesBackend)
            and backend.distributed_runtime != "trainjob"
        )
        if mpi_without_launcher_pod:
            assert isinstance(backend, KubernetesBackend)
            yield diag(
                "PG400",
                f"launcher 'mpi' of step '{step.name}' needs an MPI launcher pod, which distributed_runtime "
                f"'{backend.distributed_runtime}' of backend '{name}' does not make",
                ctx.step_at(i, kind, "distributed", "launcher"),
                "set distributed_runtime: trainjob on the backend (Kubeflow Trainer's mpi-distributed runtime), "
                "or use launcher: torchrun or none",
            )
