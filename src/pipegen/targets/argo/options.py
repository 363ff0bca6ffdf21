"""`targets: {argo: {...}}`: the options a spec can give the Argo Workflows target."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipegen.targets.kfp.options import EnvSource

# A Kubernetes namespace or service account name (DNS-1123 label / subdomain).
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ArgoOptions(BaseModel):
    """`targets: {argo: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    runtime_image: str | None = Field(
        None,
        description="The image Argo runs pipegen's runtime containers in (gates, start_run, evaluate, promote, "
        "notifications, AWS/local steps): one you build with pipegen-ml[runtime] installed. No public image has "
        "it, so there is no default; a spec with runtime steps must set it.",
    )
    namespace: str | None = Field(
        None,
        pattern=_DNS_LABEL,
        max_length=63,
        description="The namespace the WorkflowTemplate (and CronWorkflow) live and run in; defaults to the "
        "namespace of the spec's kubernetes backends (a workflow's pods all run in its own namespace).",
    )
    service_account: str | None = Field(
        None,
        pattern=_DNS_SUBDOMAIN,
        max_length=253,
        description="The workflow's service account (spec.serviceAccountName): it must be allowed to create and "
        "patch workflowtaskresults, which output parameters need. Kubernetes steps use their backend's own.",
    )
    mlflow_secret: EnvSource | None = Field(
        None,
        description="A Kubernetes Secret with MLflow settings (MLFLOW_TRACKING_URI, credentials), set as environment "
        "variables (secretKeyRef) on every container that talks to MLflow: ${env.X} in mlflow.tracking_uri reads them.",
    )
    mlflow_config_map: EnvSource | None = Field(
        None,
        description="Like mlflow_secret, from a ConfigMap (configMapKeyRef), for settings that are not secret.",
    )
