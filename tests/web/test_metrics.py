"""``/metrics``, read back with prometheus_client's own parser of the text format."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import Site


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_what_the_cache_and_the_database_say(client: TestClient) -> None:
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(answer.text)
    assert found[("dagfetch_versions", (("repo", "etl"), ("state", "materialized")))] == 2
    assert found[("dagfetch_versions", (("repo", "etl"), ("state", "evicted")))] == 0
    assert found[("dagfetch_versions", (("repo", "docs"), ("state", "materialized")))] == 1
    assert found[("dagfetch_dags", ())] == 2
    assert found[("dagfetch_import_errors", (("repo", "etl"),))] == 1
    assert found[("dagfetch_import_errors", (("repo", "docs"),))] == 0
    assert found[("dagfetch_last_sync_failed", (("repo", "etl"),))] == 0
    assert 0 <= found[("dagfetch_seconds_since_last_success", (("repo", "etl"),))] < 3600
    # this process ran no sync: its counters have no samples yet
    assert not [key for key in found if key[0].startswith("dagfetch_syncs")]


def test_the_syncs_this_process_ran(own_site: Site) -> None:
    runner = own_site.runner()
    with TestClient(own_site.app(runner=runner)) as client:
        own_site.remote.write("more.py", b"x = 1\n" * 100)
        runner.run(["etl"])
        runner.run(["etl"])  # nothing changed
        own_site.remote.write("etl.py", b"raise SystemExit(\n")  # a file that fails to import
        runner.run(["etl"])
        found = samples(client.get("/metrics").text)
    etl = (("repo", "etl"),)
    assert found[("dagfetch_syncs_total", (("repo", "etl"), ("result", "changed")))] == 2
    assert found[("dagfetch_syncs_total", (("repo", "etl"), ("result", "unchanged")))] == 1
    assert found[("dagfetch_sync_duration_seconds_count", etl)] == 3
    assert found[("dagfetch_sync_duration_seconds_sum", etl)] > 0
    assert found[("dagfetch_downloaded_files_total", etl)] == 2
    assert found[("dagfetch_downloaded_bytes_total", etl)] == 600 + len(b"raise SystemExit(\n")
    assert found[("dagfetch_extraction_duration_seconds_count", etl)] == 2
    assert found[("dagfetch_import_errors", etl)] == 2  # broken.py and etl.py
    assert found[("dagfetch_versions", (("repo", "etl"), ("state", "materialized")))] == 4


def test_a_failed_sync_shows(own_site: Site) -> None:
    runner = own_site.runner()
    with TestClient(own_site.app(runner=runner)) as client:
        own_site.remote.symlink("escape", "/etc/passwd")  # refused by the sync
        [outcome] = runner.run(["etl"])
        assert outcome.error
        found = samples(client.get("/metrics").text)
    assert found[("dagfetch_syncs_total", (("repo", "etl"), ("result", "failed")))] == 1
    assert found[("dagfetch_last_sync_failed", (("repo", "etl"),))] == 1
