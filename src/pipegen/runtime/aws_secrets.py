"""${secret.X} in the Step Functions runtime Lambda: the AWS Secrets Manager secret `pipegen/X`.

The secret id is PIPEGEN_SECRETS_PREFIX (default `pipegen/`) followed by the name as the spec writes
it; its SecretString is the value. Where Secrets Manager has no such secret, or there is no AWS to ask
(no credentials or region, boto3 not installed: a local run), the environment variable
PIPEGEN_SECRET_<X> answers instead. Any other error (access denied, throttling, a KMS key the function
may not use) fails the step: a misconfigured policy must not quietly fall back to a stale value.
"""

from __future__ import annotations

import os
from typing import Any

from pipegen.runtime.errors import RuntimeFailure

PREFIX_ENV = "PIPEGEN_SECRETS_PREFIX"
DEFAULT_PREFIX = "pipegen/"


class SecretsManagerStore:
    """Secrets read from AWS Secrets Manager, each at most once: make one per Lambda invocation."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = os.environ.get(PREFIX_ENV, DEFAULT_PREFIX) if prefix is None else prefix
        self._cache: dict[str, str | None] = {}
        self._client: Any = None

    def secret_id(self, name: str) -> str:
        """The Secrets Manager secret id (name, or ARN when the prefix is one) of ${secret.<name>}."""
        return self.prefix + name

    def where(self, name: str) -> str:
        """Where lookup looked, for messages."""
        return f"AWS Secrets Manager (secret '{self.secret_id(name)}')"

    def lookup(self, name: str) -> str | None:
        """The secret's SecretString; None when Secrets Manager has no such secret or cannot be asked here."""
        if name not in self._cache:
            self._cache[name] = self._fetch(name)
        return self._cache[name]

    def _fetch(self, name: str) -> str | None:
        try:
            from botocore.exceptions import (  # type: ignore[import-untyped,unused-ignore]
                ClientError,
                NoCredentialsError,
                NoRegionError,
            )
        except ImportError:  # no boto3 here: not on AWS
            return None
        secret_id = self.secret_id(name)
        try:
            response = self._secretsmanager().get_secret_value(SecretId=secret_id)
        except (NoCredentialsError, NoRegionError):
            return None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ResourceNotFoundException":
                return None
            raise RuntimeFailure(
                f"cannot read ${{secret.{name}}} from AWS Secrets Manager secret '{secret_id}': "
                f"{error.get('Code')}: {error.get('Message')}"
            ) from None
        if "SecretString" not in response:
            raise RuntimeFailure(
                f"AWS Secrets Manager secret '{secret_id}' holds binary data; ${{secret.{name}}} reads SecretString"
            )
        return str(response["SecretString"])

    def _secretsmanager(self) -> Any:
        if self._client is None:
            # No stubs in the runtime's environment; the ignore stays harmless where boto3-stubs is installed.
            import boto3  # type: ignore[import-untyped,unused-ignore]

            # boto3 does not read AWS_REGION, which the Lambda runtime sets (see gates._s3_client).
            session = boto3.session.Session()
            self._client = session.client("secretsmanager", region_name=os.environ.get("AWS_REGION") or None)
        return self._client
