"""The optional extras do what the README says: each database extra brings the driver its URL scheme loads."""

from __future__ import annotations

import importlib.metadata as metadata
import tomllib

import pytest
import sqlalchemy as sa
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipegen.runtime.gates import check_gate
from tests.cases import REPO
from tests.support_tools import free_port

EXTRAS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]


@pytest.mark.parametrize(
    ("extra", "scheme", "module"),
    [("postgres", "postgresql+psycopg", "psycopg"), ("mysql", "mysql+pymysql", "pymysql")],
)
def test_database_extra_brings_the_driver_of_its_url_scheme(extra: str, scheme: str, module: str) -> None:
    required = {canonicalize_name(Requirement(r).name): Requirement(r) for r in EXTRAS[extra]}
    # The extra includes [sql] (SQLAlchemy) and the distribution that provides the driver module.
    assert "sql" in required["pipegen-ml"].extras
    assert {canonicalize_name(d) for d in metadata.packages_distributions()[module]} & set(required)
    # SQLAlchemy loads that driver for the scheme: the gate gets as far as the network (nobody listens on
    # the port), where a missing driver would fail on import.
    url = f"{scheme}://gate:secret@127.0.0.1:{free_port()}/warehouse"
    with pytest.raises(sa.exc.OperationalError) as failure:
        check_gate({"check": "sql", "connection": url, "query": "SELECT 1"})
    assert "127.0.0.1" in str(failure.value)
