"""Compute resources as each service spells them: Kubernetes quantities, AWS Batch resource requirements."""

from __future__ import annotations

import re

from pipegen.spec import Resources


def quantity_mib(quantity: str) -> int:
    """Kubernetes memory quantity to MiB, as AWS Batch wants it."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    assert match, quantity
    number, unit = float(match[1]), match[2] or ""
    factor = {
        "": 1 / 2**20,
        "Ki": 1 / 1024,
        "Mi": 1,
        "Gi": 1024,
        "Ti": 1024**2,
        "k": 1000 / 2**20,
        "M": 10**6 / 2**20,
        "G": 10**9 / 2**20,
        "T": 10**12 / 2**20,
    }[unit]
    return max(1, round(number * factor))


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
