"""The recurring-run file beside a scheduled pipeline."""

from __future__ import annotations

import json

from pipegen.resolve import Pipeline


def recurring_run(pipeline: Pipeline) -> str:
    """A KFP recurring-run definition (the IR cannot hold a schedule); see the README for submission."""
    sched = pipeline.schedule
    assert sched is not None
    # KFP cron has a seconds field first.
    doc = {
        "display_name": f"{pipeline.name} schedule",
        "pipeline": f"{pipeline.name}.yaml",
        "trigger": {
            "cron_schedule": {
                "cron": f"0 {sched.cron}",
                **({"start_time": f"{sched.start.isoformat()}T00:00:00Z"} if sched.start else {}),
            }
        },
        "timezone": sched.timezone,
        "catchup": sched.catchup,
        "max_concurrency": 1,
        "parameters": {k: v for k, v in sorted(pipeline.spec.params.items())},
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
