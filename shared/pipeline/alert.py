"""The alert function's work: send each alert event once to each of its monitor's providers.

Each send is claimed, then recorded, in alert_history (unique on run, provider, kind) and announced as a live
event. Used by the alert function (functions/alert).

A send whose claim another invocation holds is left in flight: its stream message is not acknowledged, so the
connector delivers it again. If that sender finished, the next delivery finds the send recorded and skips it; if
it died (killed mid-send), its claim expires after ALERT_CLAIM_EXPIRY_SECONDS (120 s, the alert function's
exec_timeout in stack.yml, which ends any live sender first; tests/test_alert_claims.py reads both) and the next
delivery sends. Each delivery
carries its dedup key (`deliveryKey`), the same on every retry, so a receiver can drop the rare duplicate of a
sender that died after its request went out and before it recorded the send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime

from shared import db
from shared.models import AlertEnvelope
from shared.notify import AlertMessage, SendResult, build_message, send_to_provider
from shared.redis import publish_live_events
from shared.security import key_ring, provider_binding
from shared.settings import get_settings
from shared.telemetry import Tally

log = logging.getLogger(__name__)


def monitor_link(monitor_id: uuid.UUID | str) -> str:
    return f"{get_settings().public_base_url}/function/api/monitors/{monitor_id}"


async def send_alerts(events: list[AlertEnvelope]) -> dict[str, int]:
    """send_alert_batch's counts alone."""
    counts, _ = await send_alert_batch(events)
    return counts


async def send_alert_batch(events: list[AlertEnvelope]) -> tuple[dict[str, int], set[uuid.UUID]]:
    """Sends each alert event to each of its monitor's providers once, recording alert_history rows.

    Monitors are served concurrently, so one slow monitor's providers do not hold up the batch; one monitor's
    events go out in order, so a flap's "Down" never arrives after its "Recovered".

    Returns the counts, and the alert events with a send still claimed elsewhere (to deliver again later).
    """
    counts = {"sent": 0, "partial": 0, "failed": 0, "suppressed": 0, "skipped": 0, "in_flight": 0}
    in_flight: set[uuid.UUID] = set()
    tally = Tally()
    by_monitor: dict[uuid.UUID, list[AlertEnvelope]] = {}
    for event in events:
        by_monitor.setdefault(event.monitor_id, []).append(event)

    async def one_monitor(monitor_events: list[AlertEnvelope]) -> None:
        for event in monitor_events:
            providers = await _providers_for(event)
            outcomes = await asyncio.gather(
                *(_send_one(event, provider) for provider in providers), return_exceptions=True
            )
            for provider, outcome in zip(providers, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    # Recorded as failed where possible; one broken provider never stops the others.
                    log.error(
                        "alert %s to provider %s raised %r", event.alert_event_id, provider["id"], outcome
                    )
                    counts["failed"] += 1
                else:
                    counts[outcome] += 1
                    if outcome == "in_flight":
                        in_flight.add(event.alert_event_id)
                    _tally_delivery(tally, event, provider, outcome)

    try:
        await asyncio.gather(*(one_monitor(monitor_events) for monitor_events in by_monitor.values()))
    finally:
        await tally.flush()  # each send committed its own row; those of a batch an error stopped count too
    return counts, in_flight


# What _send_one returns once it recorded the send's outcome in alert_history; skipped (recorded by an earlier
# delivery) and in_flight (another sender's) are not this call's to count.
_RECORDED_OUTCOMES = frozenset({"sent", "partial", "failed", "suppressed"})


def _tally_delivery(tally: Tally, event: AlertEnvelope, provider: dict, outcome: str) -> None:
    if outcome in _RECORDED_OUTCOMES:
        tally.count("supercheck_alert_deliveries", provider_type=provider["type"], outcome=outcome)
        tally.count(
            "supercheck_monitor_alerts", monitor_id=event.monitor_id, kind=event.alert_kind, outcome=outcome
        )


async def _providers_for(event: AlertEnvelope) -> list[dict]:
    async with db.transaction() as conn:
        return await (
            await conn.execute(
                """
                select p.id, p.project_id, p.type, p.config_encrypted, e.payload, e.kind, e.suppressed_reason, m.alert_config
                from alert_events e
                join monitors m on m.id = e.monitor_id
                join notification_providers p on p.project_id = m.project_id and p.enabled
                where e.id = %s and (
                    p.id::text in (select jsonb_array_elements_text(m.alert_config -> 'notificationProviders'))
                    or p.id in (select provider_id from monitor_notification_settings s where s.monitor_id = m.id))
                """,
                (event.alert_event_id,),
            )
        ).fetchall()


async def _send_one(event: AlertEnvelope, provider: dict) -> str:
    message = build_message(
        provider["kind"],
        provider["payload"],
        (provider["alert_config"] or {}).get("customMessage"),
        event.monitor_id,
        monitor_link(event.monitor_id),
        delivery_key=f"supercheck-{event.run_id}-{event.alert_kind}",
    )
    if provider["suppressed_reason"]:
        return await _record_suppressed(event, provider["id"], message, provider["suppressed_reason"])
    claim_id = await _claim(event, provider["id"], message)
    if claim_id == _HELD_ELSEWHERE:
        return "in_flight"
    if claim_id is None:
        return "skipped"
    try:
        config = json.loads(
            key_ring().decrypt(provider["config_encrypted"], provider_binding(provider["project_id"]))
        )
        result = await send_to_provider(provider["type"], config, message)
    except Exception as error:  # an undecryptable or stale config is this provider's failure, not the batch's
        log.exception("alert %s to provider %s could not be attempted", event.alert_event_id, provider["id"])
        result = SendResult("failed", 0, f"could not be attempted: {type(error).__name__}")
    async with db.transaction() as conn:
        await conn.execute(
            """update alert_history set status = %s, error = %s, attempts = attempts + %s, recipients = %s,
                   sent_at = case when %s then now() end
               where id = %s""",
            (
                result.status,
                result.error,
                result.attempts,
                json.dumps(result.recipients) if result.recipients is not None else None,
                result.status != "failed",
                claim_id,
            ),
        )
    if result.status != "sent":
        log.warning(
            "alert %s to provider %s %s: %s",
            event.alert_event_id,
            provider["id"],
            result.status,
            result.error,
        )
    await _publish_live_alert(event, provider["id"], result.status)
    return result.status


async def _record_suppressed(
    event: AlertEnvelope, provider_id: uuid.UUID, message: AlertMessage, reason: str
) -> str:
    async with db.transaction() as conn:
        row = await (
            await conn.execute(
                """insert into alert_history
                       (alert_event_id, monitor_id, run_id, provider_id, kind, status, title, message, reason)
                   values (%s, %s, %s, %s, %s, 'suppressed', %s, %s, %s)
                   on conflict (run_id, provider_id, kind) do nothing returning id""",
                (
                    event.alert_event_id,
                    event.monitor_id,
                    event.run_id,
                    provider_id,
                    event.alert_kind,
                    message.title,
                    message.text,
                    reason,
                ),
            )
        ).fetchone()
    return "suppressed" if row else "skipped"


_HELD_ELSEWHERE = -1


async def _claim(event: AlertEnvelope, provider_id: uuid.UUID, message: AlertMessage) -> int | None:
    """Exactly one invocation gets to send (run, provider, kind); a dead sender's claim expires.

    Returns the row to record the send in; None when the send is already recorded; _HELD_ELSEWHERE when another
    invocation's claim is still fresh (it may be sending right now, or it may have died).
    """
    async with db.transaction() as conn:
        await conn.execute(
            """insert into alert_history (alert_event_id, monitor_id, run_id, provider_id, kind, status, title, message)
               values (%s, %s, %s, %s, %s, 'pending', %s, %s)
               on conflict (run_id, provider_id, kind) do nothing""",
            (
                event.alert_event_id,
                event.monitor_id,
                event.run_id,
                provider_id,
                event.alert_kind,
                message.title,
                message.text,
            ),
        )
        row = await (
            await conn.execute(
                """update alert_history set status = 'sending', claimed_at = now()
                   where run_id = %s and provider_id = %s and kind = %s
                     and (status = 'pending'
                          or (status = 'sending' and claimed_at < now() - make_interval(secs => %s)))
                   returning id""",
                (event.run_id, provider_id, event.alert_kind, get_settings().alert_claim_expiry_seconds),
            )
        ).fetchone()
        if row:
            return row["id"]
        held = await (
            await conn.execute(
                """select 1 from alert_history where run_id = %s and provider_id = %s and kind = %s
                   and status = 'sending'""",
                (event.run_id, provider_id, event.alert_kind),
            )
        ).fetchone()
    return _HELD_ELSEWHERE if held else None


async def _publish_live_alert(event: AlertEnvelope, provider_id: uuid.UUID, status: str) -> None:
    try:
        await publish_live_events(
            [
                {
                    "type": "alert",
                    "monitorId": event.monitor_id,
                    "runId": event.run_id,
                    "kind": event.alert_kind,
                    "providerId": provider_id,
                    "status": status,
                    "at": datetime.now(UTC).isoformat(),
                }
            ]
        )
    except Exception:  # live events are best effort; the send is already recorded
        log.warning("live event for alert %s not published", event.alert_event_id, exc_info=True)
