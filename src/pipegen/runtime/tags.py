"""The MLflow tag names pipegen writes: users and dashboards rely on them, so they never change."""

from __future__ import annotations

PIPELINE = "pipegen.pipeline"
SPEC_SHA256 = "pipegen.spec_sha256"
TARGET = "pipegen.target"
RUN_KEY = "pipegen.run_key"
STEP = "pipegen.step"
GIT_COMMIT = "pipegen.git_commit"
PARAMS = "pipegen.params"
EVALUATION = "pipegen.evaluation"
EVALUATION_REASONS = "pipegen.evaluation.reasons"
THRESHOLDS = "pipegen.thresholds"
METRIC_PREFIX = "pipegen.metric."
PROMOTE_ATTEMPT = "pipegen.promote_attempt_ms"
# On a training run the runtime ended (its job left it RUNNING): the end time it set, in ms. While the run's end time
# is still that one, no job has touched the run since, so a retry that succeeds ends it again (FINISHED).
CLOSED_MS = "pipegen.closed_ms"

# Tags copied from the run to the registered model version, so a version says where it came from.
LINEAGE = (PIPELINE, SPEC_SHA256, TARGET, RUN_KEY, STEP, GIT_COMMIT)
