"""Property-based tests of the JSON API from its own OpenAPI document: schemathesis makes
requests from ``/openapi.json`` (valid and invalid ones) to the app in-process, and no
answer may be a server error, nor an answer its document does not describe.

Bounded so that it takes about a minute: a few dozen examples per operation, no deadline
(the machine is shared)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.web.conftest import HOSTILE_DAG, HOSTILE_FILE, Site

pytestmark = pytest.mark.slow

EXAMPLES = 30


def operations(site: Site) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", site.app())
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_has_every_operation(site: Site) -> None:
    labels = {operation.label for operation in operations(site)}
    assert "GET /api/dags/{dag_id}/graph" in labels and "POST /api/hooks/{repo_id}" in labels
    assert len(labels) == 14


@pytest.mark.parametrize("index", range(14))
def test_no_server_error_and_every_answer_as_documented(site: Site, index: int) -> None:
    operation = operations(site)[index]
    # generated ids almost never name a repository, version or DAG that exists: half the
    # examples use ones that do, so the answers past the first lookup are tried too
    known = {"repo_id": ["etl", "docs"], "dag_id": ["etl", HOSTILE_DAG, "weekly"],
             "version_id": [site.old, site.new[:6], "current"],
             "path": ["etl.py", "data.bin", "reports/weekly.py", HOSTILE_FILE]}
    known_query = {"old": [site.old, "current"], "new": [site.new[:5], "current"],
                   "repo_id": ["etl"], "version_id": [site.old]}

    @given(case=operation.as_strategy(), data=st.data())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any, data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            if name in known and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(known[name]))
        for name in list(case.query or {}):
            if name in known_query and data.draw(st.booleans()):
                case.query[name] = data.draw(st.sampled_from(known_query[name]))
        case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                       content_type_conformance,
                                       response_schema_conformance])

    check()
