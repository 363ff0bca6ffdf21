"""Regenerate every golden file: `make golden`. Review the diff before committing it."""

from __future__ import annotations

import os

from tests.cases import INVALID, REPO, SCHEMA, diagnostics_text, expected_path, rel


def main() -> None:
    """Rewrite schema/, tests/invalid/*.expected (and, once targets exist, golden/)."""
    os.chdir(REPO)
    from pipegen.schema import schema_text

    SCHEMA.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {rel(SCHEMA)}")
    for spec in INVALID:
        expected_path(spec).write_text(diagnostics_text(spec), encoding="utf-8")
        print(f"wrote {rel(expected_path(spec))}")


if __name__ == "__main__":
    main()
