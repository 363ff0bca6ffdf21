"""`python -m pipegen.runtime ACTION ARGS_JSON [--output FILE]`: run one action in a container.

The result is printed as JSON on the last line of stdout (and written to --output when given, for
KFP output parameters). A failure exits 1 with the reason on stderr. Everything printed or written
passes through the redactor: a container's log and KFP's output parameters are no place for a secret.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipegen.runtime.actions import ACTIONS, action
from pipegen.runtime.errors import report_failure
from pipegen.runtime.redact import install_log_redaction, redact_data


def main(argv: list[str] | None = None) -> int:
    """Run one runtime action from the command line."""
    parser = argparse.ArgumentParser(prog="python -m pipegen.runtime")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("args", help="the action's arguments as a JSON object")
    parser.add_argument("--output", help="also write the JSON result to this file")
    ns = parser.parse_args(argv)
    install_log_redaction()
    try:
        kwargs = json.loads(ns.args)
    except json.JSONDecodeError as exc:
        parser.error(f"ARGS_JSON is not JSON: {exc}")
    if not isinstance(kwargs, dict):
        parser.error("ARGS_JSON must be a JSON object")
    try:
        result = action(ns.action)(**kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure is reported (masked) and ends the command with 1
        return report_failure(ns.action, exc)
    text = json.dumps(redact_data(result), sort_keys=True)
    if ns.output:
        Path(ns.output).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
