"""An in-process API on a real port, for contract tests with an unmodified boto3 client.

``serve(settings)`` runs ``create_app(settings)`` under uvicorn in a thread and
yields its URL; ``Api`` makes boto3 ``pinpoint`` clients for it (the admin key
is ``ADMIN``); ``api_settings`` configures a test's settings for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from tests.asgi_server import serve_asgi

from lodestar.api.app import create_app
from lodestar.settings import Settings

ADMIN = ("LSATESTADMIN00000001", "AdminSecret0000000000000000000000000000x")
REGION = "eu-west-1"
ACCOUNT = "123456789012"


@dataclass
class Api:
    url: str
    settings: Settings

    def client(self, akid: str, secret: str, region: str = "us-east-1") -> Any:
        return boto3.client(
            "pinpoint", endpoint_url=self.url, region_name=region,
            aws_access_key_id=akid, aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )

    def admin(self) -> Any:
        return self.client(*ADMIN)


def api_settings(settings: Settings, control_dsn: str, **changes: Any) -> Settings:
    """``settings`` pointed at a migrated database, with the test admin key."""
    return settings.with_changes(
        postgres_dsn=control_dsn, admin_access_key_id=ADMIN[0],
        admin_secret_access_key=ADMIN[1], region=REGION, account_id=ACCOUNT, **changes,
    )


def serve(settings: Settings) -> Iterator[str]:
    """Run the API under uvicorn in a thread; yield its URL; stop it afterwards."""
    with serve_asgi(create_app(settings), lifespan="on") as url:
        yield url
