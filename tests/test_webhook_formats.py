"""Webhook formats against receivers that enforce Slack's, Discord's and Teams' documented rules;
Retry-After in every RFC 9110 form; dead hooks and rate limits; no progress after a job ended;
chat URLs masked."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from exports.job_runner import JobSession
from exports.models import Job
from exports.pipeline.progress import CancelToken, ProgressSnapshot
from hypersdk.lib import events
from tests.chat_receivers import (
    DISCORD_PATH,
    SLACK_ARCHIVED,
    SLACK_DEAD,
    SLACK_PATH,
    TEAMS_PATH,
    discord_receiver,
    slack_receiver,
    teams_receiver,
)
from tests.test_webhooks import attempt, finished_job, progress_event
from tests.webhook_receiver import Reply
from webhooks import dispatch, drain, fanout, formats, retry_after, service
from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

RECEIVERS = {"slack": slack_receiver, "discord": discord_receiver, "teams": teams_receiver}
# Long, multi-byte, with combining marks and an emoji sequence around every cut point.
LONG_ERROR = "disk read failed: " + "é̃👩‍💻 @everyone <!channel> & " * 400


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.HYPERSDK_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = [0, 0, 0]
    settings.HYPERSDK_WEBHOOK_TIMEOUT = 10
    settings.HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.HYPERSDK_PUBLIC_URL = ""
    events.subscribe(fanout.on_event)
    fanout.throttle._last.clear()
    return settings


@pytest.fixture(params=sorted(RECEIVERS))
def chat(request):
    receiver = RECEIVERS[request.param]().start()
    receiver.format = request.param
    yield receiver
    receiver.stop()


@pytest.fixture
def slack():
    receiver = slack_receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def discord():
    receiver = discord_receiver().start()
    yield receiver
    receiver.stop()


def send_all(webhook: Webhook) -> list[WebhookDelivery]:
    """Attempt every pending delivery of the webhook once, oldest first."""
    rows = list(
        WebhookDelivery.objects.filter(webhook=webhook, status="pending").order_by("created_at", "id")
    )
    for row in rows:
        WebhookDelivery.objects.filter(id=row.id).update(next_attempt_at=timezone.now())
        drain.deliver(row.id)
    return list(WebhookDelivery.objects.filter(id__in=[row.id for row in rows]).order_by("created_at", "id"))


# ---- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", "slack"),
        ("https://discord.com/api/webhooks/123/abc", "discord"),
        ("https://discordapp.com/api/webhooks/123/abc", "discord"),
        ("https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y", "teams"),
        (
            "https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=s",
            "teams",
        ),
        (
            "https://default1234.56.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke",
            "teams",
        ),
        ("https://example.com/hooks.slack.com/services/x", "standard"),
        ("https://discord.com/channels/1/2", "standard"),
        ("https://receiver.example.com/hook", "standard"),
    ],
)
def test_the_format_is_inferred_from_the_url(url, expected):
    assert formats.infer(url) == expected


def test_an_explicit_format_wins_and_an_unknown_one_is_a_400(operator_api, chat):
    created = operator_api.post("/webhooks", {"url": chat.url, "format": chat.format}, format="json")
    assert created.status_code == 201 and created.json()["format"] == chat.format
    bad = operator_api.post("/webhooks", {"url": chat.url, "format": "irc"}, format="json")
    assert bad.status_code == 400 and "format" in bad.json()
    assert Webhook.objects.count() == 1
    listed = operator_api.get("/webhooks").json()["results"]
    assert [row["format"] for row in listed] == [chat.format]


def emit_every_event(job_running: Job, job_done: Job, job_failed: Job, job_cancelled: Job) -> None:
    events.emit("job.started", job_running.as_event())
    events.emit("job.progress", progress_event(job_running, phase="downloading", percent=40))
    events.emit("job.completed", job_done.as_event())
    events.emit("job.failed", job_failed.as_event())
    events.emit("job.cancelled", job_cancelled.as_event())
    events.emit(
        "schedule.triggered",
        {
            "schedule_id": "sch-1",
            "name": "prod-backup",
            "slot": "2026-01-01T02:00:00Z",
            "job_id": job_done.id,
        },
    )


def test_every_event_in_every_chat_format_is_accepted_by_its_receiver(chat, settings):
    settings.HYPERSDK_PUBLIC_URL = "https://hypersdk.example.com"
    webhook, _ = service.add_webhook(chat.url, ["*"], format=chat.format)
    running = finished_job(status=Job.Status.RUNNING, finished_at=None)
    done = finished_job(result={"vm_name": "app01", "files": [{"name": "app01.ova", "size": 5 * 2**30}]})
    failed = finished_job(status=Job.Status.FAILED, error=LONG_ERROR)
    cancelled = finished_job(status=Job.Status.CANCELLED, error="cancelled by operator")
    emit_every_event(running, done, failed, cancelled)
    sent = send_all(webhook)
    assert [(row.event, row.status) for row in sent] == [
        (event, "delivered")
        for event in (
            "job.started",
            "job.progress",
            "job.completed",
            "job.failed",
            "job.cancelled",
            "schedule.triggered",
        )
    ], [(row.event, row.status_code, row.error) for row in sent]
    assert service.test_webhook(webhook.id).ok
    assert len(chat.accepted) == 7
    # No signature headers: chat services check none.
    assert all("webhook-signature" not in request.headers for request in chat.requests)
    text = json.dumps(chat.accepted, ensure_ascii=False)
    # What happened, the VM, the job id, the duration, the size, the error, the link.
    for expected in ("Export completed", "/dc/vm/prod/app01", done.id, "42s", "5.0 GiB", "disk read failed"):
        assert expected in text, expected
    assert f"https://hypersdk.example.com/ui/jobs/{done.id}/" in text


def test_without_a_public_url_there_is_no_link(slack):
    webhook, _ = service.add_webhook(slack.url, format="slack")
    events.emit("job.completed", finished_job().as_event())
    send_all(webhook)
    assert "/ui/jobs/" not in json.dumps(slack.accepted)


def test_the_standard_envelope_is_what_slack_refuses_with_no_text(slack):
    """The issue's reproduction: the receiver is strict, and our chat format is what fixes it."""
    webhook, _ = service.add_webhook(slack.url, format="standard")
    result = service.test_webhook(webhook.id)
    assert (result.ok, result.status_code, result.error) == (False, 400, "HTTP 400: no_text")


def test_slack_sections_are_verbatim_so_a_vm_name_cannot_mention_here():
    """Without ``verbatim: true`` Slack auto-parses "@here"/"@channel" in mrkdwn text."""
    job = finished_job(status="failed", error="@here @channel disk gone", vm_path="/dc/vm/@everyone")
    message = formats.render("slack", "job.failed", job.as_event())
    for block in message["blocks"]:
        assert block["text"]["verbatim"] is True


def test_slack_body_has_text_and_blocks_and_escapes_control_characters(slack):
    webhook, _ = service.add_webhook(slack.url, format="slack")
    events.emit("job.failed", finished_job(status=Job.Status.FAILED, error="<!channel> & x").as_event())
    send_all(webhook)
    (message,) = slack.accepted
    assert message["text"].startswith("❌ Export failed: app01")
    section = message["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt; &amp; x" in section and "<!channel>" not in section


def test_discord_messages_stay_within_its_limits_and_ping_nobody(discord):
    webhook, _ = service.add_webhook(discord.url, format="discord")
    events.emit("job.failed", finished_job(status=Job.Status.FAILED, error=LONG_ERROR).as_event())
    (sent,) = send_all(webhook)
    assert sent.status == "delivered", sent.error
    (message,) = discord.accepted
    assert message["allowed_mentions"] == {"parse": []}
    error = next(field["value"] for field in message["embeds"][0]["fields"] if field["name"] == "Error")
    assert error.endswith("…") and len(error) <= formats.ERROR_CHARS


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abcdef", 10, "abcdef"),
        ("abcdef", 4, "abc…"),
        ("ab" + "e\u0301" * 5, 5, "abe\u0301…"),  # a combining accent is never left behind alone
        ("ab👩\u200d💻cd", 5, "ab…"),  # nor half of a ZWJ emoji sequence
        ("ab🇫🇷🇩🇪", 5, "ab🇫🇷…"),  # nor half of a flag
        ("日本語のテキスト", 4, "日本語…"),
    ],
)
def test_truncation_never_splits_a_character_or_a_grapheme(text, limit, expected):
    cut = formats.truncate(text, limit)
    assert cut == expected and len(cut) <= limit
    cut.encode("utf-8")  # whole code points only


# ---- Retry-After (RFC 9110 §10.2.3, §5.6.7) -----------------------------------------------------

NOW = datetime(1994, 11, 6, 8, 39, 37, tzinfo=UTC)  # 10 minutes before the RFC's example date


def test_retry_after_delay_seconds():
    assert retry_after.parse_retry_after("600", NOW) == timedelta(minutes=10)


def test_retry_after_imf_fixdate():
    assert retry_after.parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW) == timedelta(minutes=10)


def test_retry_after_rfc_850_date():
    assert retry_after.parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", NOW) == timedelta(minutes=10)


def test_retry_after_asctime_date():
    assert retry_after.parse_retry_after("Sun Nov  6 08:49:37 1994", NOW) == timedelta(minutes=10)


def test_retry_after_a_date_in_the_past_means_now():
    assert retry_after.parse_retry_after("Sun, 06 Nov 1994 08:29:37 GMT", NOW) == timedelta(0)


def test_an_unparsable_retry_after_falls_back_to_the_schedule_and_is_logged_once(caplog):
    retry_after._unreadable_logged.clear()
    with caplog.at_level(logging.WARNING, logger="webhooks.retry_after"):
        assert retry_after.parse_retry_after("in a little while", NOW) is None
        assert retry_after.parse_retry_after("in a little while", NOW) is None
        assert retry_after.parse_retry_after("-5", NOW) is None
    warnings = [r.getMessage() for r in caplog.records if "Retry-After" in r.getMessage()]
    assert len(warnings) == 2 and "in a little while" in warnings[0]


def test_a_retry_after_of_thousands_of_digits_falls_back_to_the_schedule(caplog):
    """int() of more than 4,300 digits raises ValueError: such a value is unreadable, logged once."""
    retry_after._unreadable_logged.clear()
    with caplog.at_level(logging.WARNING, logger="webhooks.retry_after"):
        assert retry_after.parse_retry_after("1" * 4400, NOW) is None
        assert retry_after.parse_retry_after("1" * 4400, NOW) is None
    assert len([r for r in caplog.records if "Retry-After" in r.getMessage()]) == 1
    assert retry_after.parse_retry_after("9" * 12, NOW) == retry_after.MAX_RETRY_AFTER


def test_one_delivery_failing_inside_the_drainer_does_not_stop_the_others(
    slack, monkeypatch, redis_url, webhook_settings
):
    """A fault of ours while sending one delivery is that delivery's failed attempt (retried on
    the schedule); the rest of the batch is still sent and the drainer's slot is handed back."""
    from tests.webhook_receiver import Receiver

    webhook_settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = [600]  # not due again within this drain
    webhook_settings.HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES = 10
    bad = Receiver().start()
    try:
        hostile, _ = service.add_webhook(bad.url, ["job.failed"])
        service.add_webhook(slack.url, ["job.failed"], format="slack")
        bad.default = Reply(503, {"Retry-After": "1" * 4400}, b"busy")
        original = retry_after.retry_after_of

        def broken(status_code, headers, text):  # any unexpected fault, not only the one fixed
            if status_code == 503:
                raise RuntimeError("boom")
            return original(status_code, headers, text)

        monkeypatch.setattr(retry_after, "retry_after_of", broken)
        for _ in range(3):
            events.emit("job.failed", finished_job(status="failed", error="x").as_event())
        dispatch.redis_client().set(dispatch.slot_key(0), "1")
        assert drain.drain(0) == 6
        assert not dispatch.redis_client().exists(dispatch.slot_key(0))
        assert len(slack.accepted) == 3
        for row in WebhookDelivery.objects.filter(webhook=hostile):
            assert row.attempts == 1 and row.error == "internal error: RuntimeError"
            assert row.status == "pending" and row.next_attempt_at is not None
    finally:
        bad.stop()


def test_a_retry_after_of_thousands_of_digits_does_not_stop_the_drain(slack, webhook_settings):
    from tests.webhook_receiver import Receiver

    webhook_settings.HYPERSDK_WEBHOOK_RETRY_DELAYS = [600]  # not due again within this drain
    bad = Receiver().start()
    try:
        hostile, _ = service.add_webhook(bad.url, ["job.failed"])
        service.add_webhook(slack.url, ["job.failed"], format="slack")
        bad.default = Reply(503, {"Retry-After": "1" * 4400}, b"busy")
        events.emit("job.failed", finished_job(status="failed", error="x").as_event())
        assert drain.drain(-1) == 2
        row = WebhookDelivery.objects.get(webhook=hostile)
        assert (row.status, row.attempts, row.status_code) == ("pending", 1, 503)
        assert len(slack.accepted) == 1
    finally:
        bad.stop()


@pytest.mark.parametrize(
    "form",
    ["%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"],
    ids=["imf-fixdate", "rfc-850", "asctime"],
)
def test_a_retry_after_date_in_each_form_delays_the_retry(slack, form):
    """The issue: one date form was ignored and the receiver hit again after 5 s, not 10 min."""
    webhook, _ = service.add_webhook(slack.url, format="slack")
    when = (timezone.now() + timedelta(minutes=10)).strftime(form)
    slack.reply(Reply(503, headers={"Retry-After": when}))
    events.emit("job.completed", finished_job().as_event())
    waiting = attempt(webhook)
    assert waiting.status == "pending"
    assert waiting.next_attempt_at - waiting.last_attempt_at >= timedelta(minutes=9, seconds=55)


# ---- dead hooks and rate limits -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "reply", "reason"),
    [
        ("slack", SLACK_DEAD, "404 no_service"),
        ("slack", SLACK_ARCHIVED, "410 channel_is_archived"),
        (
            "discord",
            Reply(
                404, {"Content-Type": "application/json"}, b'{"message": "Unknown Webhook", "code": 10015}'
            ),
            "404 Unknown Webhook",
        ),
    ],
)
def test_a_dead_hook_disables_the_webhook_with_the_reason(slack, fmt, reply, reason):
    webhook, _ = service.add_webhook(slack.url_for(path=SLACK_PATH), format=fmt)
    slack.rules = lambda received: None  # answer as told, whatever the body
    slack.reply(reply)
    events.emit("job.completed", finished_job().as_event())
    dead = attempt(webhook)
    webhook.refresh_from_db()
    assert dead.status == "failed" and not webhook.enabled
    assert reason in webhook.disabled_reason


def test_an_unknown_404_is_an_ordinary_failure_not_a_dead_hook(slack):
    webhook, _ = service.add_webhook(slack.url_for(path="/services/other"), format="slack")
    slack.unknown = Reply(404, body=b"not found")
    events.emit("job.completed", finished_job().as_event())
    assert attempt(webhook).status == "pending"
    webhook.refresh_from_db()
    assert webhook.enabled


def test_slack_429_delays_by_retry_after_and_does_not_count_toward_disabling(slack):
    webhook, _ = service.add_webhook(slack.url, format="slack")
    events.emit("job.completed", finished_job().as_event())
    for _ in range(5):  # more than HYPERSDK_WEBHOOK_DISABLE_AFTER_FAILURES (3) and the retries
        slack.reply(Reply(429, {"Retry-After": "30"}, b"rate_limited"))
        limited = attempt(webhook)
        assert limited.status == "pending"
        assert limited.next_attempt_at - limited.last_attempt_at >= timedelta(seconds=30)
    webhook.refresh_from_db()
    assert (webhook.enabled, webhook.failure_streak) == (True, 0)
    assert attempt(webhook).status == "delivered"


def test_discord_429_waits_for_its_json_retry_after(discord):
    webhook, _ = service.add_webhook(discord.url, format="discord")
    discord.reply(
        Reply(
            429,
            {
                "Content-Type": "application/json",
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": "64.57",
            },
            b'{"message": "You are being rate limited.", "retry_after": 64.57, "global": false}',
        )
    )
    events.emit("job.completed", finished_job().as_event())
    limited = attempt(webhook)
    assert limited.status == "pending"
    assert limited.next_attempt_at - limited.last_attempt_at >= timedelta(seconds=64.5)
    webhook.refresh_from_db()
    assert webhook.failure_streak == 0


# ---- no progress after the end ---------------------------------------------------------------


def test_a_progress_queued_while_the_job_ran_is_not_sent_once_it_ended(slack):
    webhook, _ = service.add_webhook(slack.url, ["job.progress", "job.completed"], format="slack")
    job = finished_job(status=Job.Status.RUNNING, finished_at=None)
    events.emit("job.progress", progress_event(job, phase="completed", percent=100))
    Job.objects.filter(id=job.id).update(status=Job.Status.COMPLETED, finished_at=timezone.now())
    events.emit("job.completed", Job.objects.get(id=job.id).as_event())
    sent = send_all(webhook)
    assert [(row.event, row.status) for row in sent] == [
        ("job.progress", "skipped"),
        ("job.completed", "delivered"),
    ]
    assert [message["text"] for message in slack.accepted] == ["✅ Export completed: app01"]


def test_a_progress_emitted_after_the_job_ended_makes_no_delivery(slack):
    service.add_webhook(slack.url, ["job.progress"], format="slack")
    job = finished_job()
    events.emit("job.progress", progress_event(job, phase="completed", percent=100))
    assert not WebhookDelivery.objects.exists()


def test_a_progress_flushed_after_the_job_ended_is_not_emitted(monkeypatch):
    job = finished_job()
    seen = []
    monkeypatch.setattr(events, "_subscribers", [lambda event, data: seen.append(event)])
    session = JobSession(job, CancelToken())
    session.progress(ProgressSnapshot(phase="completed", percent=100.0))
    session._flush_progress()
    assert seen == []
    # While it runs, the same flush is emitted (so the check above can fail).
    Job.objects.filter(id=job.id).update(status=Job.Status.RUNNING, finished_at=None)
    session.progress(ProgressSnapshot(phase="downloading", percent=50.0))
    session._flush_progress()
    assert seen == ["job.progress"]


# ---- secrets in chat URLs ----------------------------------------------------------------------


def test_a_chat_urls_path_is_masked_everywhere_but_the_201_and_never_in_an_error(operator_api, slack, caplog):
    url = slack.url
    created = operator_api.post("/webhooks", {"url": url, "format": "slack"}, format="json").json()
    assert created["url"] == url  # once, to the creator
    # A Slack-format receiver on a host other than Slack's: where its secret starts in the path
    # is unknown, so none of the path is shown.
    masked = f"http://127.0.0.1:{slack.port}/…"
    assert operator_api.get("/webhooks").json()["results"][0]["url"] == masked
    assert operator_api.get("/webhooks/0").json()["url"] == masked
    webhook = Webhook.objects.get()
    assert webhook.url == masked and str(webhook).endswith(masked)
    # The receiver redirects to a URL with the secret in it, and echoes it in a 4xx.
    slack.rules = lambda received: None
    token = SLACK_PATH.rsplit("/", 1)[1]
    slack.reply(
        Reply(302, {"Location": url}, b""),
        Reply(400, body=f"bad hook {SLACK_PATH}".encode()),
        Reply(403, body=f"invalid_token {token}".encode()),
    )
    with caplog.at_level(logging.INFO):  # what the daemon logs (httpcore's DEBUG trace is off)
        first, second, third = (service.test_webhook(0) for _ in range(3))
    for secret in (SLACK_PATH.rsplit("/", 2)[1], token):
        for result in (first, second, third):
            assert not result.ok and secret not in result.error, result.error
        for row in WebhookDelivery.objects.all():
            assert secret not in row.error and secret not in row.response_excerpt
    assert third.error == "HTTP 403: invalid_token …"
    assert secret not in caplog.text


def test_a_teams_sig_echoed_by_the_receiver_is_never_stored_or_shown(operator_api):
    """Power Automate's secret is a query value (``sig=``): a receiver echoing it in its error
    must not put it in the delivery's error or excerpt, which viewers see."""
    from tests.webhook_receiver import Receiver

    receiver = Receiver().start()
    try:
        secret = "SIGSECRETvalue123"
        url = receiver.url_for(path=f"{TEAMS_PATH}?api-version=1&sp=%2Ftriggers&sig={secret}")
        service.add_webhook(url, ["job.failed"], format="teams")
        receiver.reply(Reply(401, body=f"bad sig={secret} for {url}".encode()))
        result = service.test_webhook(0)
        assert not result.ok and secret not in result.error and "***" in result.error
        shown = operator_api.get("/webhooks/0/deliveries").content.decode()
        assert "HTTP 401" in shown and secret not in shown
        for row in WebhookDelivery.objects.all():
            assert secret not in row.error and secret not in row.response_excerpt
    finally:
        receiver.stop()


def test_discord_urls_are_masked_after_the_webhook_id():
    webhook, _ = service.add_webhook(f"https://discord.com{DISCORD_PATH}")
    assert webhook.format == "discord"
    assert webhook.url == "https://discord.com/api/webhooks/123456789012345678/…"


@pytest.mark.parametrize(
    ("url", "fmt", "shown"),
    [
        (
            "https://hooks.slack.com./services/T0/B0/SECRET9",
            "slack",
            "https://hooks.slack.com./services/T0/…",
        ),
        ("https://HOOKS.slack.com/services/T0/B0/SECRET9", "slack", "https://HOOKS.slack.com/services/T0/…"),
        (
            "https://discord.com./api/webhooks/123/SECRET9",
            "discord",
            "https://discord.com./api/webhooks/123/…",
        ),
        (
            "https://discord.com/webhooks/123/SECRETtoken12345678",
            "discord",
            "https://discord.com/webhooks/123/…",
        ),
        (
            "https://hooks.slack.com/services%2FT0%2FB0%2FSECRET9",
            "slack",
            "https://hooks.slack.com/services/T0/…",
        ),
        (
            "https://outlook.office365.com/webhook/SECRET9/x",
            "teams",
            "https://outlook.office365.com/webhook/…",
        ),
        ("https://example.com/hooks/SECRETtoken12345678/x", "standard", "https://example.com/hooks/…"),
        ("https://example.com/v1/events/42", "standard", "https://example.com/v1/events/42"),
    ],
)
def test_chat_hosts_are_normalised_and_token_like_path_segments_are_masked(url, fmt, shown):
    webhook, _ = service.add_webhook(url)
    assert (webhook.format, webhook.url) == (fmt, shown)
    assert "SECRET" not in webhook.url


# ---- admin and dashboard --------------------------------------------------------------------


def test_the_admin_sets_or_infers_the_format_and_shows_chat_urls_masked(admin_client, slack):
    from tests.test_webhooks import NO_INLINES

    form = {"events": '["job.completed"]', "headers": "{}", "enabled": "on", **NO_INLINES}
    admin_client.post(
        "/admin/webhooks/webhook/add/", {**form, "url": slack.url, "format": "slack"}, follow=True
    )
    admin_client.post(
        "/admin/webhooks/webhook/add/",
        {**form, "url": "https://hooks.slack.com/services/T1/B1/SECRET1"},
        follow=True,
    )
    explicit, inferred = Webhook.objects.order_by("created_at", "id")
    assert (explicit.format, inferred.format) == ("slack", "slack")
    listing = admin_client.get("/admin/webhooks/webhook/").content.decode()
    assert "XXXXXXXX" not in listing and "SECRET1" not in listing
    assert "https://hooks.slack.com/services/T1/…" in listing
    assert service.test_webhook(explicit.id).ok


def test_changing_the_format_in_the_admin_keeps_a_masked_url_masked(admin_client, slack):
    from tests.test_webhooks import NO_INLINES

    webhook, _ = service.add_webhook(slack.url, ["job.failed"], format="slack")
    form = {"events": '["job.failed"]', "enabled": "on", "format": "standard", **NO_INLINES}
    answer = admin_client.post(f"/admin/webhooks/webhook/{webhook.id}/change/", form)
    assert answer.status_code == 302
    webhook.refresh_from_db()
    assert webhook.format == "standard" and "XXXXXXXX" not in webhook.url
    assert "XXXXXXXX" not in admin_client.get("/admin/webhooks/webhook/").content.decode()
    assert "XXXXXXXX" not in json.dumps(service.list_webhooks()[0].url)


def test_the_dashboard_lists_the_format_and_the_masked_chat_url(admin_client, slack):
    service.add_webhook(slack.url, format="slack")
    page = admin_client.get("/ui/webhooks/").content.decode()
    assert f"http://127.0.0.1:{slack.port}/…" in page and ">slack<" in page
    assert "XXXXXXXX" not in page
