"""Uploads a synthetic run's artifacts to an S3-compatible bucket (MinIO in production) and names their URLs.
Used by the check-synthetic function; cleanup expires what it uploaded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from shared.settings import Settings

KEY_PREFIX = "synthetic"  # every artifact lives under this prefix, so retention can expire them by prefix
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".zip": "application/zip",
}


def run_prefix(monitor_id: object, run_id: object, location: str) -> str:
    """One folder per (run, location): a redelivered job overwrites its own files and nobody else's."""
    return f"{KEY_PREFIX}/{monitor_id}/{run_id}/{location}"


@dataclass(frozen=True)
class ArtifactStore:
    bucket: str
    endpoint_url: str | None
    public_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore | None:
        """None when no bucket is configured: checks still run, their artifacts are just not kept."""
        if not settings.s3_bucket:
            return None
        return cls(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            public_url=settings.s3_public_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )

    def client(self):
        """One client per store settings and process: building one costs ~100 ms; boto3 clients are thread-safe."""
        return _client(self)

    def _new_client(self):
        import boto3  # imported here: every function loads the check table, only check-synthetic uploads
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},  # MinIO and moto serve buckets by path, not by host name
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def url_for(self, key: str) -> str:
        base = self.public_url or self.endpoint_url
        if base:
            return f"{base.rstrip('/')}/{self.bucket}/{key}"
        return f"s3://{self.bucket}/{key}"

    def key_of(self, url: str) -> str | None:
        """The object key behind a URL that url_for made (e.g. a result's reportUrl)."""
        for base in (self.public_url, self.endpoint_url, "s3:/"):
            if base and url.startswith(start := f"{base.rstrip('/')}/{self.bucket}/"):
                return url[len(start) :]
        return None

    def presigned_url(self, key: str, expires_seconds: int = 3600) -> str:
        """A time-limited link that reads one artifact from a private bucket (blocking: boto3)."""
        return self.client().generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )

    def upload(self, prefix: str, files: list[Path]) -> dict[str, str]:
        """Blocking (boto3): call it in a thread. Returns each file's name -> URL. The files go up together."""
        client = self.client()

        def put(path: Path) -> tuple[str, str]:
            key = f"{prefix}/{path.name}"
            client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": CONTENT_TYPES.get(path.suffix, "application/octet-stream")},
            )
            return path.name, self.url_for(key)

        with ThreadPoolExecutor(max_workers=max(1, len(files))) as uploads:
            return dict(uploads.map(put, files))


@lru_cache(maxsize=4)
def _client(store: ArtifactStore):
    return store._new_client()
