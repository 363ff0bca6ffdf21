"""The compute backends steps run on (`backends:` in a spec), one model per `type`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from pipegen.spec.base import Model
from pipegen.spec.limits import LIMITS, SPARK_MEMORY, bounded_integer, bounded_number, check_spark_memory
from pipegen.spec.scalars import EnvName, TStr

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
RayGpus = Annotated[float, Field(json_schema_extra={"minimum": LIMITS["ray.gpus"].low}), bounded_number("ray.gpus")]


class KubernetesBackend(Model):
    """Runs the command in a pod."""

    type: Literal["kubernetes"]
    image: TStr
    namespace: str = "default"
    service_account: str | None = None
    node_selector: dict[str, str] = {}
    env: dict[EnvName, TStr] = {}


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


# Where a Spark application runs. Only `submit` (spark-submit against `master`) for now; platforms that need
# their own ids (emr, emr_serverless, glue, kubernetes) join this list with a key of their own for those ids
# (e.g. `emr: {cluster_id}`), so the keys every platform shares stay where they are.
SPARK_PLATFORMS = ("submit",)


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
    platform: Literal["submit"] = "submit"
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


class RayBackend(Model):
    """Submits a Ray job: the step's command is the entrypoint. `address: local` is a Ray `pipegen run` starts."""

    type: Literal["ray"]
    address: Annotated[TStr, Field(min_length=1)]
    runtime_env: dict[str, Any] = {}
    entrypoint_resources: RayEntrypointResources | None = None


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
