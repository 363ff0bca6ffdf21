"""A Ray job entrypoint that fails (tests/specs/sparkray-failing.yaml)."""

raise RuntimeError("training diverged: loss is nan")
