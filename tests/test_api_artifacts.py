"""A synthetic run's artifacts through the API: a 307 to a short-lived presigned link into the (moto) bucket,
which stays private; only the caller's project's results, only artifacts the result recorded."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shared.settings import get_settings, reset_settings_cache
from shared.synthetic.artifacts import ArtifactStore
from tests.api_client import ApiClient
from tests.factories import SYNTHETIC_BUCKET, add_result, default_project, insert_monitor, make_project

SCREENSHOT = b"\x89PNG fake screenshot bytes"


@pytest.fixture
def anonymous_local(monkeypatch):
    """Keyless calls act in the default project, as under `make run`."""
    monkeypatch.setenv("SC_ALLOW_ANONYMOUS_LOCAL", "true")
    reset_settings_cache()


@pytest.fixture
def stored(clean, s3, anonymous_local):
    """A monitor of the default project whose result recorded a screenshot stored in the bucket."""
    monitor_id = insert_monitor(clean, "journey")
    key = f"synthetic/{monitor_id}/run/us-east/screenshot.png"
    s3.put_object(Bucket=SYNTHETIC_BUCKET, Key=key, Body=SCREENSHOT)
    url = ArtifactStore.from_settings(get_settings()).url_for(key)
    add_result(
        clean, monitor_id, "us-east", datetime.now(UTC), 900, details={"artifacts": {"screenshot.png": url}}
    )
    result_id = clean.sql("select id from monitor_results where monitor_id = %s", (monitor_id,))[0][0]
    return monitor_id, result_id, url


def test_an_artifact_is_a_redirect_to_a_presigned_link_that_serves_it(aio, stored):
    monitor_id, result_id, url = stored
    reply = ApiClient(aio, None).get(f"/monitors/{monitor_id}/results/{result_id}/artifacts/screenshot.png")
    assert reply.status_code == 307 and reply.headers["cache-control"] == "no-store"
    link = reply.headers["location"]
    query = parse_qs(urlsplit(link).query)
    assert "Signature" in query and "test-secret-key" not in link
    assert 800 < int(query["Expires"][0]) - time.time() <= 900  # valid for 15 minutes
    assert urlsplit(link).path == urlsplit(url).path
    assert httpx.get(link).content == SCREENSHOT
    assert httpx.get(url).status_code == 403  # the bucket itself stays private


@pytest.mark.parametrize(
    "path, why",
    [
        ("/results/{result}/artifacts/trace.zip", "no artifact 'trace.zip'"),
        ("/results/999999999/artifacts/screenshot.png", "result not found"),
        ("/results/12abc/artifacts/screenshot.png", "result not found"),
        ("/results/99999999999999999999999/artifacts/screenshot.png", "result not found"),
    ],
)
def test_an_artifact_the_result_did_not_record_is_404(aio, stored, path, why):
    monitor_id, result_id, _ = stored
    reply = ApiClient(aio, None).get(f"/monitors/{monitor_id}" + path.format(result=result_id))
    assert reply.status_code == 404 and why in reply.json()["error"]["message"]


def test_another_projects_artifact_is_404(aio, stored, clean):
    monitor_id, result_id, _ = stored
    assert default_project(clean)  # the stored monitor is the default project's
    other = ApiClient(aio, make_project(aio, "elsewhere"))
    reply = other.get(f"/monitors/{monitor_id}/results/{result_id}/artifacts/screenshot.png")
    assert reply.status_code == 404 and "location" not in reply.headers
