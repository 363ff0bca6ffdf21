"""KFP fixtures: the session's Ray head (tests/support_ray.py), for the pipelines that submit Ray jobs."""

from __future__ import annotations

from tests.support_ray import ray_client_env, ray_head  # noqa: F401 - fixtures, registered here once
