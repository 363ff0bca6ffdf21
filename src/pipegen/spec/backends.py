"""The compute backends steps run on (`backends:` in a spec), one model per `type`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from pipegen.spec.base import Model
from pipegen.spec.distributed import StartupTimeout, Toleration
from pipegen.spec.limits import LIMITS, SPARK_MEMORY, bounded_integer, bounded_number, check_spark_memory
from pipegen.spec.scalars import EnvName, Quantity, TStr

InstanceCount = Annotated[
    int, Field(ge=LIMITS["instance_count"].low, le=LIMITS["instance_count"].high), bounded_integer("instance_count")
]
SparkCores = Annotated[
    int, Field(ge=LIMITS["spark.cores"].low, le=LIMITS["spark.cores"].high), bounded_integer("spark.cores")
]
SparkInstances = Annotated[
    int, Field(ge=LIMITS["spark.instances"].low, le=LIMITS["spark.instances"].high), bounded_integer("spark.instances")
]
# The pattern goes to the JSON Schema only: check_spark_memory says what is wrong (and checks the range).
SparkMemory = Annotated[
    str, AfterValidator(check_spark_memory), Field(json_schema_extra={"pattern": f"^{SPARK_MEMORY}$"})
]
RayCpus = Annotated[float, Field(json_schema_extra={"minimum": LIMITS["ray.cpus"].low}), bounded_number("ray.cpus")]
RayReplicas = Annotated[
    int, Field(ge=LIMITS["ray.replicas"].low, le=LIMITS["ray.replicas"].high), bounded_integer("ray.replicas")
]
RayGpus = Annotated[float, Field(json_schema_extra={"minimum": LIMITS["ray.gpus"].low}), bounded_number("ray.gpus")]


class KubernetesBackend(Model):
    """Runs the command in a pod."""

    type: Literal["kubernetes"]
    image: TStr
    namespace: str = "default"
    service_account: str | None = None
    node_selector: dict[str, str] = {}
    env: dict[EnvName, TStr] = {}
    # For steps with `distributed:` (pipegen.spec.distributed): the construct that runs their nodes. indexed_job
    # needs nothing installed beyond Kubernetes itself (an Indexed Job plus a headless Service), so it is the default;
    # jobset needs the JobSet controller, trainjob the Kubeflow Trainer (and its torch-distributed runtime).
    distributed_runtime: Literal["indexed_job", "jobset", "trainjob"] = "indexed_job"
    tolerations: list[Toleration] = []
    # How long a pod may take to be scheduled and pull its image before the step fails (large GPU images).
    startup_timeout: StartupTimeout | None = None


class AwsBatchBackend(Model):
    """Submits an AWS Batch job."""

    type: Literal["aws_batch"]
    job_queue: str
    job_definition: str
    region: str | None = None


class SageMakerBackend(Model):
    """Runs a SageMaker training job."""

    type: Literal["sagemaker"]
    role_arn: str
    image: TStr
    instance_type: str
    instance_count: InstanceCount = 1
    output_path: TStr
    region: str | None = None


# Where a Spark application runs: `submit` (spark-submit against `master`) or a managed platform. Each managed
# platform has a key of its own, named like the platform, for the ids it needs (e.g. `emr: {cluster_id}`), so the
# keys every platform shares (conf, driver, executors, main_class, py_files, jars, packages) stay where they are.
SPARK_PLATFORMS = ("submit", "kubernetes", "emr", "emr_serverless", "emr_on_eks", "glue")
SparkPlatform = Literal["submit", "kubernetes", "emr", "emr_serverless", "emr_on_eks", "glue"]
# An AWS region name as the SDKs take it (us-east-1, eu-central-2, us-gov-west-1).
AwsRegion = Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")]
IamRoleArn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")]
EmrReleaseLabel = Annotated[str, Field(pattern=r"^emr-\d+\.\d+\.\d+(-[a-z0-9-]+)?$")]


class SparkOnKubernetes(Model):
    """A Spark Operator `SparkApplication` (sparkoperator.k8s.io/v1beta2): the driver and executors are pods."""

    image: TStr
    spark_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    namespace: str = "default"
    service_account: str | None = None


class SparkOnEmr(Model):
    """A step added to a running EMR cluster (`command-runner.jar spark-submit ...`)."""

    cluster_id: Annotated[str, Field(pattern=r"^j-[A-Z0-9]{1,255}$")]
    region: AwsRegion | None = None


class SparkOnEmrServerless(Model):
    """A job run on an EMR Serverless Spark application."""

    application_id: Annotated[str, Field(pattern=r"^[0-9a-z]{1,64}$")]
    execution_role_arn: IamRoleArn
    region: AwsRegion | None = None


class SparkOnEmrOnEks(Model):
    """A job run on an EMR on EKS virtual cluster (emr-containers StartJobRun)."""

    virtual_cluster_id: Annotated[str, Field(pattern=r"^[0-9a-z]{1,64}$")]
    execution_role_arn: IamRoleArn
    release_label: EmrReleaseLabel
    region: AwsRegion | None = None


class SparkOnGlue(Model):
    """A run of an existing Glue job. The job holds its script: the step's command is [script, *args] and the
    script must be the job's (targets cannot change it per run); args become the run's `--key value` arguments."""

    job_name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_ .:/@#=+-]+$")]
    region: AwsRegion | None = None


class SparkDriver(Model):
    """The Spark driver's size (spark-submit --driver-cores, --driver-memory)."""

    cores: SparkCores | None = None
    memory: SparkMemory | None = None


class SparkExecutors(Model):
    """How many executors and of what size (--num-executors, --executor-cores, --executor-memory)."""

    instances: SparkInstances | None = None
    cores: SparkCores | None = None
    memory: SparkMemory | None = None


class SparkBackend(Model):
    """Submits a Spark application: the step's command is [application, *args]."""

    type: Literal["spark"]
    platform: SparkPlatform = "submit"
    master: TStr = "local[*]"
    deploy_mode: Literal["client", "cluster"] = "client"
    conf: dict[Annotated[str, Field(min_length=1)], TStr] = {}
    driver: SparkDriver | None = None
    executors: SparkExecutors | None = None
    main_class: Annotated[str, Field(pattern=r"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$")] | None = None
    py_files: list[TStr] = []
    jars: list[TStr] = []
    # Maven coordinates, group:artifact:version.
    packages: list[Annotated[str, Field(pattern=r"^[^:\s,]+:[^:\s,]+:[^:\s,]+$")]] = []
    kubernetes: SparkOnKubernetes | None = None
    emr: SparkOnEmr | None = None
    emr_serverless: SparkOnEmrServerless | None = None
    emr_on_eks: SparkOnEmrOnEks | None = None
    glue: SparkOnGlue | None = None

    @model_validator(mode="after")
    def _platform_has_its_ids(self) -> SparkBackend:
        # A platform's ids live under the key named like it: one without the other is a half-written backend,
        # and `master`/`deploy_mode` mean something only to spark-submit (managed platforms choose their own).
        for name in SPARK_PLATFORMS[1:]:
            given = getattr(self, name) is not None
            if given and name != self.platform:
                raise PydanticCustomError(
                    "pg_combination",
                    "'{key}' is for platform {key}; this backend's platform is '{platform}'",
                    {"key": name, "platform": self.platform, "hint": f"set platform: {name}, or remove '{name}'"},
                )
            if not given and name == self.platform:
                raise PydanticCustomError(
                    "pg_combination",
                    "platform '{platform}' needs a '{platform}:' key with the ids it runs on",
                    {"platform": name, "hint": f"add '{name}:' to the backend (see `pipegen init` for an example)"},
                )
        if self.platform != "submit":
            for key in ("master", "deploy_mode"):
                if key in self.model_fields_set:
                    raise PydanticCustomError(
                        "pg_combination",
                        "'{key}' is a spark-submit setting; platform '{platform}' chooses its own",
                        {"key": key, "platform": self.platform, "hint": f"remove '{key}', or use platform: submit"},
                    )
        return self

    @model_validator(mode="after")
    def _cluster_needs_a_cluster(self) -> SparkBackend:
        # spark-submit refuses it ("Cluster deploy mode is not compatible with master local"): say so here.
        if self.deploy_mode == "cluster" and self.master.startswith("local"):
            raise PydanticCustomError(
                "pg_combination",
                "deploy_mode 'cluster' needs a cluster manager; master '{master}' runs Spark in this process",
                {
                    "master": self.master,
                    "hint": "use deploy_mode: client with a local master, or a cluster master (yarn, spark://, k8s://)",
                },
            )
        return self


class RayEntrypointResources(Model):
    """What the job's entrypoint (driver) reserves on the Ray cluster."""

    cpus: RayCpus | None = None
    gpus: RayGpus | None = None


class RayNodeGroup(Model):
    """Pods of one kind in a KubeRay cluster: what each asks for."""

    cpus: RayCpus | None = None
    gpus: RayGpus | None = None
    memory: Quantity | None = None


class RayWorkerGroup(RayNodeGroup):
    """A KubeRay worker group: `replicas` pods of one size."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    replicas: RayReplicas = 1


class RayCluster(Model):
    """A Ray cluster made for each run (a KubeRay `RayJob`, ray.io/v1), deleted when the job ends."""

    image: TStr
    ray_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] | None = None
    namespace: str = "default"
    service_account: str | None = None
    head: RayNodeGroup | None = None
    workers: Annotated[list[RayWorkerGroup], Field(min_length=1)]


class RayBackend(Model):
    """Submits a Ray job: the step's command is the entrypoint. It runs on the cluster at `address` (`local`: a
    Ray `pipegen run` starts), or on a cluster made per run (`cluster`, a KubeRay RayJob)."""

    type: Literal["ray"]
    address: Annotated[TStr, Field(min_length=1)] | None = None
    cluster: RayCluster | None = None
    runtime_env: dict[str, Any] = {}
    entrypoint_resources: RayEntrypointResources | None = None

    @model_validator(mode="after")
    def _one_cluster(self) -> RayBackend:
        if (self.address is None) == (self.cluster is None):
            raise PydanticCustomError(
                "pg_combination",
                "a ray backend needs exactly one of 'address' (a running cluster) and 'cluster' (one made per run)",
                {"hint": "address: http://head:8265 (or local), or cluster: {image, workers: [...]}"},
            )
        return self


class LocalBackend(Model):
    """Runs the command as a subprocess where the pipeline runs (the embedded default)."""

    type: Literal["local"]
    working_dir: str | None = None
    env: dict[EnvName, TStr] = {}


Backend = Annotated[
    KubernetesBackend | AwsBatchBackend | SageMakerBackend | SparkBackend | RayBackend | LocalBackend,
    Field(discriminator="type"),
]
BACKEND_TYPES = ("kubernetes", "aws_batch", "sagemaker", "spark", "ray", "local")


# How diagnostics name a variant: spark by its platform, ray by the key that says where its cluster is.
RAY_VARIANT_TEXT = {
    "ray.address": "address (a running Ray cluster)",
    "ray.cluster": "cluster (a KubeRay RayJob per run)",
}


def variants_text(kind: str, variants: Iterable[str]) -> str:
    """Variants of one backend type as a spec reader writes them: 'platform: emr, glue' or 'cluster (...)'."""
    mine = [v for v in variants if v.startswith(kind + ".")]
    if kind == "spark":
        return "platform: " + ", ".join(v.removeprefix("spark.") for v in mine) if mine else "no platform yet"
    return " or ".join(RAY_VARIANT_TEXT.get(v, v) for v in mine) or "no form yet"


def backend_variant(
    backend: KubernetesBackend | AwsBatchBackend | SageMakerBackend | SparkBackend | RayBackend | LocalBackend,
) -> tuple[str, str] | None:
    """For backend types that run in more than one way, the way this one runs and the key that chooses it:
    ('spark.emr', 'platform'), ('ray.cluster', 'cluster'); None for types with one way. Targets list the
    variants they run in Support.variants."""
    if isinstance(backend, SparkBackend):
        return f"spark.{backend.platform}", "platform"
    if isinstance(backend, RayBackend):
        return ("ray.cluster", "cluster") if backend.cluster is not None else ("ray.address", "address")
    return None
