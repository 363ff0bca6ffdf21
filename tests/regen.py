"""Regenerate every golden file: `make golden`. Review the diff before committing it."""

from __future__ import annotations

import os

from tests.cases import (
    GOLDEN,
    INVALID,
    REPO,
    SCHEMA,
    SUPPORT_DOC,
    compiled_goldens,
    diagnostics_text,
    expected_path,
    rel,
    support_doc_text,
)


def main() -> None:
    """Rewrite schema/, golden/, tests/invalid/*.expected and docs/targets.md."""
    os.chdir(REPO)
    from pipegen.schema import schema_text

    SCHEMA.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {rel(SCHEMA)}")
    SUPPORT_DOC.write_text(support_doc_text(), encoding="utf-8")
    print(f"wrote {rel(SUPPORT_DOC)}")
    # golden/ holds exactly what the compiler writes today: stale files are removed.
    outputs = compiled_goldens()
    for old in sorted(GOLDEN.rglob("*")):
        if old.is_file() and old.relative_to(GOLDEN).as_posix() not in outputs:
            old.unlink()
            print(f"removed {rel(old)}")
    for path, text in outputs.items():
        (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
        (GOLDEN / path).write_text(text, encoding="utf-8")
        print(f"wrote {rel(GOLDEN / path)}")
    for spec in INVALID:
        expected_path(spec).write_text(diagnostics_text(spec), encoding="utf-8")
        print(f"wrote {rel(expected_path(spec))}")


if __name__ == "__main__":
    main()
