"""Cleanup's S3 part (shared.pipeline.cleanup): synthetic artifacts past retention deleted from the bucket, but
those of kept status changes."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from shared import db
from shared.rules.retention import (
    ARTIFACT_PREFIX,
    ArtifactReport,
    Budget,
    CleanupReport,
    RetentionConfig,
    StoredObject,
    artifact_owner,
    artifacts_to_delete,
)
from shared.settings import Settings

log = logging.getLogger("supercheck.cleanup")
_S3_DELETE_CHUNK = 1000  # DeleteObjects takes at most 1000 keys


def _s3_client(settings: Settings):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )


async def _kept_status_change_results(run_ids: set[str]) -> set[tuple[str, str]]:
    if not run_ids:
        return set()
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                "select run_id::text as run_id, location from monitor_results where is_status_change and run_id = any(%s::uuid[])",
                (list(run_ids),),
            )
        ).fetchall()
    return {(row["run_id"], row["location"]) for row in rows}


async def expire_artifacts(
    report: CleanupReport, config: RetentionConfig, settings: Settings, now: datetime
) -> None:
    if not settings.s3_bucket:
        report.artifacts = ArtifactReport(skipped="no artifacts bucket configured (S3_BUCKET)")
        return
    report.artifacts = ArtifactReport(bucket=settings.s3_bucket)
    cutoff = now - timedelta(days=config.retention_days)
    budget = Budget(config.safety_limit)
    try:
        client = await asyncio.to_thread(_s3_client, settings)
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=settings.s3_bucket, Prefix=ARTIFACT_PREFIX
        )
        iterator = iter(pages)
        while (page := await asyncio.to_thread(next, iterator, None)) is not None:
            objects = [StoredObject(item["Key"], item["LastModified"]) for item in page.get("Contents", [])]
            old_runs = {
                owner[0]
                for stored in objects
                if stored.last_modified < cutoff and (owner := artifact_owner(stored.key)) is not None
            }
            kept = await _kept_status_change_results(old_runs) if config.preserve_status_changes else set()
            doomed = artifacts_to_delete(objects, cutoff, kept)[: budget.next(len(objects) or 1)]
            deleted = len(doomed)
            if not report.dry_run:
                for start in range(0, len(doomed), _S3_DELETE_CHUNK):
                    chunk = doomed[start : start + _S3_DELETE_CHUNK]
                    answer = await asyncio.to_thread(
                        client.delete_objects,
                        Bucket=settings.s3_bucket,
                        Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
                    )
                    failed = answer.get("Errors", [])
                    if failed:  # e.g. AccessDenied on some keys: counted as not deleted, tried again next run
                        deleted -= len(failed)
                        report.notes.append(f"{len(failed)} artifact(s) not deleted: {failed[0].get('Code')}")
            report.artifacts.deleted += deleted
            budget.used += deleted
            if budget.spent:
                report.notes.append("safety limit reached while expiring artifacts")
                break
    except Exception as error:  # storage being down must not hide what the database part did
        log.exception("artifact expiry failed")
        report.notes.append(f"artifact expiry failed: {type(error).__name__}")
