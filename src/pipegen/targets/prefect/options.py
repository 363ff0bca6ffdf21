"""`targets: {prefect: {...}}`: the options a spec can give the Prefect target.

work_pool reaches prefect.yaml, which `prefect deploy` templates (checks.deploy_templates refuses `{{`);
kubernetes_block reaches the flow module only, as a Python literal.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# A base job template variable's name (Prefect's templates name them like Python identifiers: image, env, ...).
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class WorkPool(BaseModel):
    """The work pool the deployment runs in (prefect.yaml `work_pool`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(
        min_length=1,
        description="The work pool's name, e.g. ml-process-pool (`prefect work-pool create NAME --type process`).",
    )
    job_variables: dict[VariableName, Any] = Field(
        default_factory=dict,
        description="Overrides of the work pool's base job template variables, e.g. {image: ..., env: {...}}, for this "
        "deployment. Never put a secret's value here: prefect.yaml is committed; a secret reaches steps as "
        "PIPEGEN_SECRET_<NAME> in the worker's environment. No value may hold '{{' (prefect deploy templates it).",
    )


class PrefectOptions(BaseModel):
    """`targets: {prefect: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    work_pool: WorkPool | None = Field(
        None,
        description="The work pool of the spec's deployment in prefect.yaml. Without it, `prefect deploy` takes the "
        "pool from PREFECT_DEFAULT_WORK_POOL_NAME (or asks).",
    )
    kubernetes_block: str | None = Field(
        None,
        min_length=1,
        description="The name of the prefect-kubernetes KubernetesCredentials block the kubernetes steps' tasks load "
        "(`KubernetesCredentials.load(NAME)`). Without it they use the pod's service account when the worker runs in "
        "the cluster (a kubernetes work pool), else the worker's kubeconfig.",
    )
