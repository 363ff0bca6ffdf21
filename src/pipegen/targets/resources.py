"""Compute resources as each service spells them: Kubernetes quantities, AWS Batch resource requirements."""

from __future__ import annotations

from pipegen.spec import Resources
from pipegen.spec.limits import quantity_value


def quantity_mib(quantity: str) -> int:
    """Kubernetes memory quantity to MiB, as AWS Batch wants it (every suffix the spec accepts, Pi and Ei too)."""
    value = quantity_value(quantity)
    assert value is not None, quantity
    return max(1, round(value / 2**20))


def kubernetes_cpu(cpu: float | str) -> str:
    """A CPU amount as a Kubernetes quantity ('8', '500m')."""
    if isinstance(cpu, str):
        return cpu
    return str(int(cpu)) if float(cpu).is_integer() else f"{int(cpu * 1000)}m"


def batch_vcpu(cpu: float | str) -> str:
    """A CPU amount as AWS Batch vCPUs ('64', '0.5')."""
    if isinstance(cpu, str):
        return str(int(cpu[:-1]) / 1000) if cpu.endswith("m") else cpu
    return str(int(cpu)) if float(cpu).is_integer() else str(cpu)


def batch_resources(resources: Resources | None) -> dict[str, str]:
    """AWS Batch resourceRequirements (VCPU, MEMORY in MiB, GPU) for a step's resources, in that order."""
    out: dict[str, str] = {}
    if resources is None:
        return out
    if resources.cpu is not None:
        out["VCPU"] = batch_vcpu(resources.cpu)
    if resources.memory is not None:
        out["MEMORY"] = str(quantity_mib(resources.memory))
    if resources.gpu:
        out["GPU"] = str(resources.gpu)
    return out
