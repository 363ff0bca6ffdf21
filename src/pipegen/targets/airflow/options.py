"""`targets: {airflow: {...}}`: the options a spec can give the Airflow target."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

# What Airflow accepts as a connection id (airflow.models.connection.RE_SANITIZE_CONN_ID, CONN_ID_MAX_LEN):
# no brace, quote or line break, so an accepted id is also literal text in the templated fields it reaches.
CONN_ID = re.compile(r"[\w#!()\-.:/\\]{1,250}")


class AirflowOptions(BaseModel):
    """`targets: {airflow: {...}}` in a spec."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    aws_conn_id: str = "aws_default"
    kubernetes_conn_id: str = "kubernetes_default"
    sagemaker_volume_gb: int = 30

    @field_validator("aws_conn_id", "kubernetes_conn_id")
    @classmethod
    def _conn_id(cls, value: str) -> str:
        if not CONN_ID.fullmatch(value):
            raise PydanticCustomError(
                "pg_name",
                "'{value}' is not an Airflow connection id",
                {
                    "value": value,
                    "hint": "Airflow connection ids are 1 to 250 letters, digits and the characters _ - . : / \\ # ! ( )",
                },
            )
        return value
