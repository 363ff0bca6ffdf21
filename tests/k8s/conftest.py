"""The session's Ray head for the RayJob entrypoint test (tests/support_ray.py)."""

from tests.support_ray import ray_client_env, ray_head  # noqa: F401 - fixtures, registered here once
