"""HTTP request and website checks against real loopback HTTP and HTTPS servers."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.checks import run_check
from shared.checks.credentials import Sealing
from shared.checks.fetch import tls_context
from shared.checks.spec import CheckSpec
from shared.models import CheckJob
from shared.settings import reset_settings_cache
from tests.check_servers import TEST_AUTHORITY, CertificateAuthority, RouteServer, self_signed
from tests.factories import TRIAL_PROJECT, trial_job

AUTHORITY = TEST_AUTHORITY
PASSWORD = "correct-horse-battery"
TOKEN = "tok_9f8e7d6c5b4a"


# Loopback servers stand in for the monitored sites, so these tests lift internal-target protection.
pytestmark = pytest.mark.usefixtures("internal_targets")


@pytest.fixture(autouse=True)
def credential_key(monkeypatch):
    """One known credential key for the module, so credentials encrypted in a test decrypt in the check."""
    monkeypatch.setenv("SC_CREDENTIAL_KEY", base64.b64encode(b"k" * 32).decode())
    from shared.security import key_ring

    key_ring.cache_clear()
    reset_settings_cache()
    yield
    key_ring.cache_clear()
    reset_settings_cache()


@pytest.fixture(scope="module", autouse=True)
def trust_test_authority():
    tls_context().load_verify_locations(cadata=AUTHORITY.pem)


@pytest.fixture
def server():
    running = RouteServer().start()
    yield running
    running.stop()


def https_server(credential):
    return RouteServer(credential=credential).start()


def check(target: str, check_type: str = "http_request", **config):
    job = trial_job({"type": check_type, "target": target, "config": config})
    return asyncio.run(run_check(job))


def test_a_2xx_is_up_with_every_timing_phase(server):
    outcome = check(server.url("/"))
    assert (outcome.status, outcome.status_code, outcome.message) == ("up", 200, "Received status code: 200")
    assert outcome.dns_ms is not None and outcome.connect_ms > 0 and outcome.first_byte_ms > 0
    assert outcome.tls_ms is None
    assert outcome.details["address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("path", "spec", "status", "message"),
    [
        ("/status/500", "", "down", "Received status code: 500, expected: 200-299"),
        ("/status/500", "200-299,404", "down", "Received status code: 500, expected: 200-299,404"),
        ("/status/404", "200-299,404", "up", "Received status code: 404"),
        ("/status/201", "2xx", "up", "Received status code: 201"),
        ("/status/204", "200", "down", "Received status code: 204, expected: 200"),
    ],
)
def test_status_codes_are_judged_by_the_spec(server, path, spec, status, message):
    outcome = check(server.url(path), expectedStatusCodes=spec)
    assert (outcome.status, outcome.message) == (status, message)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_every_method_is_sent(server, method):
    assert check(server.url("/echo"), method=method).status == "up"
    assert server.seen[-1].method == method


@pytest.mark.parametrize(
    ("body", "content_type"),
    [('{"hello": "world"}', "application/json"), ("plain words", "text/plain; charset=utf-8")],
)
def test_a_request_body_goes_out_with_its_detected_content_type(server, body, content_type):
    check(server.url("/echo"), method="POST", body=body)
    assert server.seen[-1].body == body.encode()
    assert server.seen[-1].headers["Content-Type"] == content_type


def test_custom_headers_are_sent_and_an_explicit_content_type_wins(server):
    check(
        server.url("/echo"),
        method="PUT",
        body="<a/>",
        headers={"Content-Type": "application/xml", "X-Trace": "1"},
    )
    assert server.seen[-1].headers["Content-Type"] == "application/xml"
    assert server.seen[-1].headers["X-Trace"] == "1"
    check(server.url("/echo"), headers={"User-Agent": "custom/1.0"})
    assert server.seen[-1].headers["User-Agent"] == "custom/1.0"


def test_the_target_url_is_sent_exactly_as_given(server):
    check(server.url("/Mixed/CASE%2Fpath?Query=Yes&b=%41&empty="))
    assert server.seen[-1].path == "/Mixed/CASE%2Fpath?Query=Yes&b=%41&empty="


@pytest.mark.parametrize(
    ("path", "config", "status", "fragment"),
    [
        ("/text?body=All+Systems+OK", {"keywordInBody": "systems ok"}, "up", "Received status code: 200"),
        ("/text?body=fine", {"keywordInBody": "ERROR", "keywordInBodyShouldBePresent": False}, "up", "200"),
        (
            "/text?body=an+ERROR",
            {"keywordInBody": "error", "keywordInBodyShouldBePresent": False},
            "down",
            "Keyword 'error' found in the response body, but it should be absent",
        ),
        ("/text?body=hello", {"keywordInBody": "goodbye"}, "down", "Keyword 'goodbye' not found"),
        ("/status/500", {"keywordInBody": "goodbye"}, "down", "Received status code: 500"),  # status first
        ("/gzip?body=compressed+keyword", {"keywordInBody": "KEYWORD"}, "up", "200"),
        ("/json", {"jsonPathAssertion": '$.status == "ok"'}, "up", "200"),
        ("/json", {"jsonPathAssertion": "$.items.length() > 0"}, "up", "200"),
        ("/json", {"jsonPathAssertion": "$.version >= 4"}, "down", "$.version is 3, expected >= 4"),
        ("/text?body=<html>", {"jsonPathAssertion": '$.status == "ok"'}, "down", "Response body is not JSON"),
    ],
)
def test_keyword_and_json_path_assertions(server, path, config, status, fragment):
    outcome = check(server.url(path), **config)
    assert outcome.status == status
    assert fragment in outcome.message


def test_a_slow_answer_is_degraded_not_down(server):
    outcome = check(server.url("/slow?seconds=0.3"), degradedAfterMs=100)
    assert outcome.status == "degraded"
    assert "over the 100 ms threshold" in outcome.message


def test_no_answer_within_the_timeout_is_a_timeout(server):
    outcome = check(server.url("/slow?seconds=3"), timeoutSeconds=1)
    assert outcome.status == "timeout"


def test_a_refused_connection_is_down(server):
    outcome = check(server.url("/").replace(str(server.port), "1"))
    assert outcome.status == "down" and "Request failed: ConnectError" in outcome.message


@pytest.mark.parametrize(
    ("hops", "config", "status", "fragment"),
    [
        (3, {}, "up", "Received status code: 200"),
        (5, {}, "up", "Received status code: 200"),
        (6, {}, "down", "Stopped after 5 redirects"),
        (6, {"maxRedirects": 10}, "up", "Received status code: 200"),
        (1, {"maxRedirects": 0}, "down", "Received status code: 302, expected: 200-299"),
    ],
)
def test_redirects_are_followed_up_to_the_limit(server, hops, config, status, fragment):
    outcome = check(server.url(f"/redirect/{hops}"), **config)
    assert outcome.status == status and fragment in outcome.message
    if status == "up":
        assert len(outcome.details["redirects"]) == min(hops, 10)


def test_a_303_turns_a_post_into_a_get_without_the_body(server):
    check(server.url("/see-other"), method="POST", body='{"a": 1}')
    assert [(s.method, s.body) for s in server.seen] == [("POST", b'{"a": 1}'), ("GET", b"")]


def test_credentials_do_not_follow_a_redirect_to_another_origin(server):
    other = RouteServer().start()
    try:
        check(
            server.url(f"/to?url={other.url('/echo')}"),
            auth={"type": "bearer", "token": TOKEN},
            headers={"X-Api-Key": "key-123456"},
        )
    finally:
        other.stop()
    assert server.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in other.seen[0].headers and "X-Api-Key" not in other.seen[0].headers


def test_the_body_is_read_up_to_the_cap_and_the_result_says_so(server):
    outcome = check(server.url(f"/big?bytes={3 * 1024 * 1024}"), maxResponseSizeMb=1, keywordInBody="THE-END")
    assert outcome.status == "down"
    assert "read only the first 1 MB" in outcome.message
    assert outcome.details["bodyTruncated"] is True and outcome.details["bodyBytes"] == 1024 * 1024


def test_every_redirect_hop_is_vetted_again(server, internal_targets_blocked, monkeypatch):
    """Loopback stands in for a public host here; the redirect to the metadata endpoint must still be refused."""
    import shared.ssrf as ssrf

    original = ssrf.blocked_reason
    monkeypatch.setattr(
        ssrf, "blocked_reason", lambda ip: None if str(ip).startswith("127.") else original(ip)
    )
    outcome = check(server.url("/to?url=http://169.254.169.254/latest/meta-data/"))
    assert outcome.status == "error"
    assert (
        "Target blocked: '169.254.169.254' is 169.254.169.254: link-local (cloud metadata endpoint)"
        in outcome.message
    )
    outcome = check(server.url("/to?url=http://[::ffff:a00:1]/"))
    assert outcome.status == "error" and "RFC 1918" in outcome.message


def test_the_check_connects_to_the_address_it_vetted_keeping_host_and_sni():
    server = https_server(AUTHORITY.issue_for_days(200))
    try:
        outcome = check(server.url("/echo", host="localhost"))
    finally:
        server.stop()
    assert outcome.status == "up", outcome.message
    assert server.seen[-1].headers["Host"] == f"localhost:{server.port}"
    assert server.server_names[-1] == "localhost"
    assert outcome.details["address"] == "127.0.0.1"  # localhost may also be ::1 first; 127.0.0.1 answered


def test_one_lookup_per_hop_so_a_second_dns_answer_is_never_used(server, monkeypatch):
    import socket

    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):  # resolve_target calls it in its own DNS pool
        lookups.append(host)
        # A rebinding resolver: the first answer is the real server, any later one somewhere else.
        address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    outcome = check(f"http://rebind.example:{server.port}/echo")
    assert outcome.status == "up" and lookups == ["rebind.example"]
    assert server.seen[-1].headers["Host"] == f"rebind.example:{server.port}"


# --- TLS certificates --------------------------------------------------------------------------


@pytest.mark.parametrize("check_type", ["website", "http_request"])
def test_a_valid_certificate_reports_its_facts(check_type):
    server = https_server(AUTHORITY.issue_for_days(200))
    try:
        outcome = check(server.url("/"), check_type, enableSslCheck=True)
    finally:
        server.stop()
    assert outcome.status == "up" and outcome.message == "Received status code: 200"
    ssl_facts = outcome.details["ssl"]
    assert ssl_facts["daysUntilExpiry"] == 200 and ssl_facts["expired"] is False
    assert ssl_facts["issuer"] == "CN=Supercheck Test CA" and ssl_facts["subject"] == "CN=localhost"
    assert ssl_facts["sans"] == ["localhost", "127.0.0.1", "::1"]
    assert outcome.tls_ms > 0


def test_the_website_check_has_its_certificate_check_on_by_default_and_http_request_off():
    server = https_server(AUTHORITY.issue_for_days(200))
    try:
        website, http_request = check(server.url("/"), "website"), check(server.url("/"))
    finally:
        server.stop()
    assert "ssl" in website.details and "ssl" not in http_request.details


@pytest.mark.parametrize(
    ("warning_days", "warns"),
    [(None, True), (30, True), (11, True), (10, True), (9, False), (5, False)],
)
def test_a_certificate_inside_the_warning_window_is_up_with_a_warning(warning_days, warns):
    server = https_server(AUTHORITY.issue_for_days(9.5))
    config = {} if warning_days is None else {"sslDaysUntilExpirationWarning": warning_days}
    try:
        outcome = check(server.url("/"), "website", **config)
    finally:
        server.stop()
    assert outcome.status == "up"
    assert outcome.details["ssl"]["daysUntilExpiry"] == 10  # 9.5 days, rounded up
    if warns:
        assert "SSL certificate expires in 10 days" in outcome.message
        assert outcome.details["ssl"]["expiringSoon"] is True and outcome.details["warnings"]
    else:
        assert outcome.message == "Received status code: 200" and "warnings" not in outcome.details


@pytest.mark.parametrize(
    ("credential", "fragment", "days"),
    [
        (AUTHORITY.issue_for_days(-3), "SSL certificate has expired", -3),
        (
            AUTHORITY.issue(datetime.now(UTC) + timedelta(days=2), datetime.now(UTC) + timedelta(days=90)),
            "SSL certificate is not yet valid",
            90,
        ),
        (self_signed(), "SSL certificate is untrusted: it is self-signed", 200),
        (
            CertificateAuthority(name="Unknown CA").issue_for_days(100),
            "its issuer is not a trusted authority",
            100,
        ),
        (AUTHORITY.issue_for_days(100, names=["other.example"]), "does not match the host", 100),
    ],
)
def test_a_bad_certificate_is_down_with_the_reason(credential, fragment, days):
    server = https_server(credential)
    try:
        outcome = check(server.url("/"), "website")
    finally:
        server.stop()
    assert outcome.status == "down"
    assert fragment in outcome.message
    assert outcome.details["ssl"]["daysUntilExpiry"] == days
    assert outcome.details["ssl"]["expired"] is (days <= 0)


def test_certificate_checks_follow_the_adaptive_schedule(infra, aio):
    from shared.checks.certificates import state_key

    server = https_server(AUTHORITY.issue_for_days(200))
    monitor_id = uuid.uuid4()
    spec = CheckSpec.model_validate({"type": "website", "target": server.url("/"), "config": {}})
    now = datetime.now(UTC)

    def job() -> CheckJob:
        return CheckJob(
            run_id=uuid.uuid4(),
            monitor_id=monitor_id,
            location="us-east",
            type=spec.type,
            target=spec.target,
            config=spec.config,
            scheduled_at=now,
            deadline=now,
        )

    try:
        first, second = aio.run(run_check(job())), aio.run(run_check(job()))
        note = json.loads(infra.redis().get(state_key(monitor_id, "us-east")))
        assert first.details["ssl"]["checked"] is True and note["daysLeft"] == 200
        assert second.details["ssl"] == {"checked": False, "lastCheckedAt": note["checkedAt"]}
        infra.redis().set(
            state_key(monitor_id, "us-east"),
            json.dumps({"checkedAt": (now - timedelta(hours=25)).isoformat(), "daysLeft": 200}),
        )
        assert aio.run(run_check(job())).details["ssl"]["checked"] is True, "due again after 24 h"
    finally:
        server.stop()
    assert 0 < infra.redis().ttl(state_key(monitor_id, "us-east")) <= 2 * 24 * 3600


# --- credentials -------------------------------------------------------------------------------


def sealed(body: dict, project_id: uuid.UUID = TRIAL_PROJECT) -> CheckSpec:
    return CheckSpec.model_validate(body, context=Sealing(project_id).context())


def test_credentials_are_stored_encrypted_and_revealed_only_inside_the_check(server):
    spec = sealed(
        {
            "type": "http",
            "target": server.url("/echo?status=500"),
            "config": {
                "auth": {"type": "basic", "username": "ops", "password": PASSWORD},
                "headers": {"X-Api-Key": "key-abcdef-123", "Accept": "application/json"},
            },
        }
    )
    stored = json.dumps(spec.config)
    assert PASSWORD not in stored and "key-abcdef-123" not in stored
    assert spec.config["auth"]["password"].startswith("enc:v2:")
    assert spec.config["headers"]["Accept"] == "application/json"
    assert CheckSpec.model_validate(spec.model_dump(by_alias=True)).config == spec.config, "stable on re-save"

    outcome = asyncio.run(run_check(trial_job(spec.model_dump(by_alias=True))))
    basic = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    assert server.seen[-1].headers["Authorization"] == f"Basic {basic}"
    assert server.seen[-1].headers["X-Api-Key"] == "key-abcdef-123"
    # The server echoed every header back in a failing response: the result keeps none of the secrets.
    reported = outcome.model_dump_json()
    assert outcome.status == "down" and "bodyExcerpt" in outcome.details
    for secret in (PASSWORD, basic, "key-abcdef-123"):
        assert secret not in reported


def test_a_ciphertext_opens_only_in_its_own_project_and_field(server):
    """Associated data binds each ciphertext to its project and field: moved elsewhere, it does not decrypt."""
    spec = sealed(
        {"type": "http", "target": server.url("/"), "config": {"auth": {"type": "bearer", "token": TOKEN}}}
    )
    ciphertext = spec.config["auth"]["token"]
    other_project = uuid.uuid4()
    elsewhere = CheckJob.model_validate(
        {**trial_job(spec.model_dump(by_alias=True)).model_dump(), "project_id": other_project}
    )
    outcome = asyncio.run(run_check(elsewhere))
    assert outcome.status == "error" and "cannot be decrypted" in outcome.message
    assert server.seen == [], "nothing was sent with a credential that is not this project's"

    as_header = trial_job({"type": "http", "target": server.url("/"), "config": {}}).model_copy(
        update={"config": {"headers": {"X-Token": ciphertext}}}
    )
    outcome = asyncio.run(run_check(as_header))
    assert outcome.status == "error" and "cannot be decrypted" in outcome.message, "another field: refused"
    assert server.seen == []


@pytest.mark.parametrize(
    "config",
    [
        {"auth": {"type": "bearer", "token": "enc:v2:k1:AAAA"}},
        {"auth": {"type": "basic", "username": "ops", "password": "enc:v1:k1:AAAA"}},
        {"headers": {"Authorization": "enc:v2:k1:AAAA"}},
    ],
)
def test_a_ciphertext_in_a_request_is_refused_with_its_field_named(config):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="encrypted value; send the secret itself") as raised:
        sealed({"type": "http_request", "target": "https://example.com/", "config": config})
    assert "config.auth." in str(raised.value) or "config.headers:" in str(raised.value)


def test_a_partial_update_keeps_the_stored_ciphertexts_and_only_those():
    body = {
        "type": "http",
        "target": "https://example.com/",
        "config": {"auth": {"type": "bearer", "token": TOKEN}},
    }
    stored = sealed(body).config
    kept = Sealing.keeping(TRIAL_PROJECT, stored).context()
    assert CheckSpec.model_validate({**body, "config": stored}, context=kept).config == stored
    foreign = sealed(body, uuid.uuid4()).config
    with pytest.raises(ValueError, match="encrypted value"):
        CheckSpec.model_validate({**body, "config": foreign}, context=kept)


def test_a_bearer_token_is_sent_and_never_reported(server):
    outcome = check(server.url("/echo?status=503"), auth={"type": "bearer", "token": TOKEN})
    assert server.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in outcome.model_dump_json()


def test_credentials_under_an_unknown_key_give_an_error_without_the_secret(server, monkeypatch):
    spec = sealed(
        {"type": "http", "target": server.url("/"), "config": {"auth": {"type": "bearer", "token": TOKEN}}}
    )
    from shared.security import key_ring

    monkeypatch.setenv("SC_CREDENTIAL_KEY", "k9:" + base64.b64encode(b"z" * 32).decode())
    reset_settings_cache()
    key_ring.cache_clear()
    outcome = asyncio.run(run_check(trial_job(spec.model_dump(by_alias=True))))
    assert outcome.status == "error" and "cannot be decrypted" in outcome.message
    assert server.seen == []


def test_api_reads_show_credentials_masked(clean, aio):
    from tests.api_client import ApiClient
    from tests.factories import make_project

    client = ApiClient(aio, make_project(aio, "secrets"))
    created = client.post(
        "/monitors",
        json={
            "name": "auth",
            "type": "http",
            "target": "https://api.example.net/",
            "enabled": False,
            "config": {
                "auth": {"type": "basic", "username": "ops", "password": PASSWORD},
                "headers": {"Authorization-Extra": "tok-1234567890"},
            },
        },
    )
    assert created.status_code == 201, created.text
    shown = client.get(f"/monitors/{created.json()['id']}").json()["config"]
    assert shown["auth"]["password"] == "co****ry"
    assert shown["headers"]["Authorization-Extra"] == "to****90"
    ((stored,),) = clean.sql("select config::text from monitors")
    assert PASSWORD not in stored and "tok-1234567890" not in stored and "enc:v2:" in stored


# --- validation on save ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check_type", "config", "field", "fragment"),
    [
        ("http", {"method": "TRACE"}, "config.method", "Input should be"),
        ("http", {"timeoutSeconds": 0}, "config.timeoutSeconds", "greater than or equal to 1"),
        ("http", {"timeoutSeconds": 61}, "config.timeoutSeconds", "less than or equal to 60"),
        ("http", {"expectedStatusCodes": "6xx"}, "config.expectedStatusCodes", "'6xx'"),
        ("http", {"expectedStatusCodes": "300-200"}, "config.expectedStatusCodes", "backwards"),
        ("http", {"body": "x"}, "config.body", "a GET request cannot carry a body"),
        ("http", {"headers": {"X-Bad": "a\r\nInjected: 1"}}, "config.headers", "CR, LF"),
        ("http", {"headers": {"X-Bad": "a\x00b"}}, "config.headers", "control character"),
        ("http", {"headers": {"Bad Name": "x"}}, "config.headers", "not a valid header name"),
        ("http", {"headers": {"Host": "evil"}}, "config.headers", "cannot be overridden"),
        (
            "http",
            {"headers": {f"X-{i}": "v" * 100 for i in range(90)}},
            "config.headers",
            "at most 8192 bytes",
        ),
        (
            "http",
            {"auth": {"type": "basic", "username": "u"}},
            "config.auth",
            "needs a username and a password",
        ),
        ("http", {"auth": {"type": "bearer"}}, "config.auth", "needs a token"),
        ("http", {"auth": {"type": "digest"}}, "config.auth.type", "Input should be"),
        ("http", {"auth": {"type": "bearer", "token": "a\nb"}}, "config.auth.token", "control characters"),
        (
            "http",
            {"auth": {"type": "basic", "username": "u", "password": "co****ry"}},
            "config.auth.password",
            "masked value",
        ),
        (
            "http",
            {"jsonPathAssertion": "status == 1"},
            "config.jsonPathAssertion",
            "must start with a JSON path",
        ),
        ("http", {"degradedAfterMs": 0}, "config.degradedAfterMs", "greater than or equal to 1"),
        ("http", {"maxRedirects": 21}, "config.maxRedirects", "less than or equal to 20"),
        ("http", {"maxResponseSizeMb": 0}, "config.maxResponseSizeMb", "greater than or equal to 1"),
        ("http", {"sslDaysUntilExpirationWarning": 0}, "config.sslDaysUntilExpirationWarning", "greater"),
        ("http", {"unknownField": 1}, "config.unknownField", "is not a known field"),
        ("website", {"method": "POST"}, "config.method", "is not a known field"),
        ("website", {"auth": {"type": "bearer", "token": "t"}}, "config.auth", "basic auth only"),
    ],
)
def test_bad_configs_are_refused_on_save_naming_the_field(check_type, config, field, fragment):
    from pydantic import ValidationError

    from shared.errors import validation_error_to_api_error

    with pytest.raises(ValidationError) as refused:
        sealed({"type": check_type, "target": "https://example.com/", "config": config})
    error = validation_error_to_api_error(refused.value)
    assert error.field == field, error.message
    assert fragment in error.message
    assert "a\nb" not in error.message


def test_internal_targets_are_refused_on_save_unless_allowed(internal_targets_blocked):
    from pydantic import ValidationError

    from shared.errors import validation_error_to_api_error

    with pytest.raises(ValidationError) as refused:
        CheckSpec.model_validate({"type": "website", "target": "http://0x7f.1:8080/"})
    error = validation_error_to_api_error(refused.value)
    assert error.field == "target" and "127.0.0.1: loopback" in error.message
