"""Multi-node steps (`distributed:`) on Step Functions: one `distributed.nodes` for SageMaker, AWS Batch and EKS.

- sagemaker: `ResourceConfig.InstanceCount` = nodes. The command runs as the container's entrypoint
  (ContainerEntrypoint), so no SageMaker training toolkit reads a `sagemaker_torch_distributed_enabled`
  hyperparameter (that switch belongs to AWS's framework images in script mode, whose entry point is a script,
  not the step's argv): each node reads its place from /opt/ml/input/config/resourceconfig.json, the file
  SageMaker writes into every training container (`current_host`, `hosts`). Node 0 is the first host in sorted
  order, MASTER_ADDR its host name (the hosts of a job resolve each other's names).
- aws_batch: a multi-node parallel job. The backend's `job_definition` is the user's (the template defines none:
  it has no image to put in one) and must be of type `multinode` with one node range `0:` (every node runs the
  same container; an open range lets `NodeOverrides.NumNodes` set the count). `batch:submitJob.sync` sends
  `NodeOverrides` {NumNodes, NodePropertyOverrides [{TargetNodes "0:", ContainerOverrides}]}; each node reads
  AWS_BATCH_JOB_NODE_INDEX / AWS_BATCH_JOB_MAIN_NODE_INDEX / AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS (the
  last one set on child nodes only: the main node is its own rendezvous, 127.0.0.1).
- kubernetes: `distributed_runtime: indexed_job` (see eks_nodes.py); jobset and trainjob are refused (PG602).

On SageMaker and Batch the step's command runs behind a small launcher word list (`python3 -c` on SageMaker,
`sh -c` on Batch: what each platform's contract can be read with) that sets NODE_RANK and MASTER_ADDR (and
torchrun's PET_NODE_RANK / PET_MASTER_ADDR, which torchrun reads for --node-rank / --master-addr) and then execs
the command, whose words follow as arguments (`"$@"`, `sys.argv`): no word of the spec is ever parsed by a shell.
NNODES, NPROC_PER_NODE and MASTER_PORT are fixed at compile time and travel in the job's environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipegen.diagnostics import Diagnostic, diag
from pipegen.k8s.distributed import RENDEZVOUS_PORT
from pipegen.resolve import Pipeline, ResolvedStep
from pipegen.spec import AwsBatchBackend, KubernetesBackend, SageMakerBackend, procs_per_node_of

RUNTIMES = ("indexed_job",)
# A namespace is a DNS label; the eks:call API paths and the Service name's intrinsic hold it as text.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# SageMaker takes at most 256 characters per ContainerArguments item: the script is kept within it (a test checks).
SAGEMAKER_LAUNCH = (
    "import json,os,sys;c=json.load(open('/opt/ml/input/config/resourceconfig.json'));h=sorted(c['hosts']);"
    "r=str(h.index(c['current_host']));os.environ.update(NODE_RANK=r,PET_NODE_RANK=r,MASTER_ADDR=h[0],"
    "PET_MASTER_ADDR=h[0]);os.execvp(sys.argv[1],sys.argv[1:])"
)
# The rank counts from the main node (the job definition's mainNode, 0 unless it says otherwise). A job that did
# not get the step's node count (a job definition without an open node range, or NodeOverrides not applied) stops
# at once with a message, rather than waiting at the rendezvous for nodes that never come.
BATCH_LAUNCH = (
    '[ "$AWS_BATCH_JOB_NUM_NODES" = "$NNODES" ] || { echo "pipegen: this job has $AWS_BATCH_JOB_NUM_NODES nodes,'
    ' the step asks for $NNODES: its job definition needs the node range 0: (see NodeOverrides)" >&2; exit 64; }'
    " && export NODE_RANK=$(( (AWS_BATCH_JOB_NODE_INDEX - AWS_BATCH_JOB_MAIN_NODE_INDEX + AWS_BATCH_JOB_NUM_NODES)"
    " % AWS_BATCH_JOB_NUM_NODES )) MASTER_ADDR=${AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS:-127.0.0.1}"
    ' && export PET_NODE_RANK="$NODE_RANK" PET_MASTER_ADDR="$MASTER_ADDR" && exec "$@"'
)
# $0 of the `sh -c` script (what `ps` and the shell's own messages show).
BATCH_ARGV0 = "pipegen-node"


def is_distributed(step: ResolvedStep) -> bool:
    """True for a task/train step with `distributed:`."""
    return step.kind in ("task", "train") and step.body.distributed is not None


def spec_text(text: str) -> str:
    """Literal text as spec text (`${` written `$${`), for words that go where spec strings are rendered."""
    return text.replace("${", "$${")


def torchrun_words(step: ResolvedStep) -> list[str]:
    """torchrun's fixed flags (the rank and address come from PET_NODE_RANK / PET_MASTER_ADDR), or nothing."""
    dist = step.body.distributed
    assert dist is not None
    if dist.launcher != "torchrun":
        return []
    return [
        "torchrun",
        f"--nnodes={dist.nodes}",
        f"--nproc-per-node={procs(step)}",
        f"--master-port={RENDEZVOUS_PORT}",
        # No restarts: a failed rank fails the step, which Step Functions retries whole.
        "--max-restarts=0",
        "--no-python",
    ]


def procs(step: ResolvedStep) -> int:
    """Processes per node: as written, else one per GPU, else 1."""
    dist = step.body.distributed
    assert dist is not None
    resources = step.body.resources
    return procs_per_node_of(dist, resources.gpu if resources is not None else None)


def node_command(step: ResolvedStep) -> list[str]:
    """The command of each node of a SageMaker or Batch step, in spec text: launcher words, then the step's."""
    backend = step.backend
    command = [*torchrun_words(step), *step.body.command]
    if isinstance(backend, SageMakerBackend):
        return ["python3", "-c", spec_text(SAGEMAKER_LAUNCH), *command]
    assert isinstance(backend, AwsBatchBackend)
    return ["sh", "-c", spec_text(BATCH_LAUNCH), BATCH_ARGV0, *command]


def node_env(step: ResolvedStep) -> dict[str, str]:
    """What every node knows before it starts: the node count, processes per node, the rendezvous port."""
    dist = step.body.distributed
    assert dist is not None
    return {"MASTER_PORT": str(RENDEZVOUS_PORT), "NNODES": str(dist.nodes), "NPROC_PER_NODE": str(procs(step))}


def node_checks(pipeline: Pipeline) -> Iterator[Diagnostic]:
    """PG602 where Step Functions cannot start a step's nodes: JobSet/TrainJob on EKS, MPI off Kubernetes."""
    for step in pipeline.steps:
        if not is_distributed(step):
            continue
        backend = step.backend
        dist = step.body.distributed
        assert dist is not None
        if isinstance(backend, KubernetesBackend) and backend.distributed_runtime not in RUNTIMES:
            yield diag(
                "PG602",
                f"target 'stepfunctions' does not run distributed_runtime '{backend.distributed_runtime}' "
                f"(step '{step.name}', backend '{step.backend_name}'): eks:runJob waits for a Job only",
                pipeline.source_map.value(("backends", step.backend_name or "", "distributed_runtime")),
                "use distributed_runtime: indexed_job (an Indexed Job and its headless Service)",
            )
        if isinstance(backend, KubernetesBackend) and DNS_LABEL.match(backend.namespace) is None:
            yield diag(
                "PG602",
                f"target 'stepfunctions' cannot put namespace '{backend.namespace}' of backend "
                f"'{step.backend_name}' in a Kubernetes API path (step '{step.name}'): it is not a namespace name",
                pipeline.source_map.value(("backends", step.backend_name or "", "namespace")),
                "a namespace is a DNS label: lower-case letters, digits and '-', at most 63 characters",
            )
        if dist.launcher == "mpi" and isinstance(backend, AwsBatchBackend | SageMakerBackend):
            yield diag(
                "PG602",
                f"target 'stepfunctions' does not start MPI on {backend.type} backend '{step.backend_name}' "
                f"(step '{step.name}'): nothing would write the hostfile mpirun needs",
                pipeline.locate(step, step.kind, "distributed", "launcher"),
                "use launcher: torchrun, or none and start MPI from the command",
            )
