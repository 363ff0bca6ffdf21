"""A new local sqlite MLflow store starts as a copy of an empty one, migrated once per MLflow version.

MLflow creates a sqlite store by running every schema migration since its first release, about 9 s of the first
`pipegen run` in a directory. The worker (localrun.worker) instead copies an empty store it migrated once into
the user's cache: `PIPEGEN_CACHE_DIR`, else `$XDG_CACHE_HOME/pipegen`, else `~/.cache/pipegen`. The copy has no
experiments: MLflow adds its Default experiment when it opens a store without one, with the artifact location of
the directory it opens it from, as for a store it had just created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path


def cache_dir() -> Path:
    """Where pipegen keeps what it builds once per user (the migrated empty store)."""
    if os.environ.get("PIPEGEN_CACHE_DIR"):
        return Path(os.environ["PIPEGEN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pipegen"


def template_path() -> Path:
    """The migrated empty store for the installed MLflow (its schema is the version's)."""
    from mlflow.version import VERSION

    return cache_dir() / f"mlflow-{VERSION}-empty.sqlite"


def seed(db: str) -> bool:
    """Put a migrated empty store at db when there is none; True when it did. Any failure leaves db alone, and
    MLflow then creates the store itself, as without this."""
    if os.path.exists(db):
        return False
    try:
        template = template_path()
        if not template.exists():
            _make(template)
        partial = f"{db}.{os.getpid()}.partial"
        shutil.copyfile(template, partial)
        try:
            os.link(partial, db)  # never over a store that appeared meanwhile
        finally:
            os.unlink(partial)
    except (OSError, sqlite3.Error):
        return False
    return True


def _make(template: Path) -> None:
    """Create an empty store with MLflow (its migrations), less its Default experiment, and move it into place."""
    import mlflow

    template.parent.mkdir(parents=True, exist_ok=True)
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    try:
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{partial}").search_experiments(max_results=1)
        with contextlib.closing(sqlite3.connect(partial)) as db, db:
            db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            db.execute("DELETE FROM experiments WHERE experiment_id = 0")
        os.replace(partial, template)  # another run making it at the same time writes the same thing
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
