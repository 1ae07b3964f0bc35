"""The read-model projections as their own process: ``lodestar worker --without-projections``
beside ``lodestar projections``, as a deployment that scales them apart would run them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import ADMIN_KEY, launch
from tests.e2e.test_endpoints_boto3 import client, eventually

pytestmark = pytest.mark.e2e


def test_reads_work_with_the_projections_in_their_own_process(
    lodestar_env: dict[str, str], tmp_path: Path, unique: str
) -> None:
    procs, urls = launch(lodestar_env, tmp_path, "--without-projections", projections=True)
    try:
        admin = client(urls["api"], *ADMIN_KEY)
        app_id = admin.create_app(CreateApplicationRequest={"Name": f"proj-{unique}"})[
            "ApplicationResponse"]["Id"]
        segment = admin.create_segment(ApplicationId=app_id, WriteSegmentRequest={
            "Name": "email", "Dimensions": {"Demographic": {
                "Channel": {"DimensionType": "INCLUSIVE", "Values": ["EMAIL"]}}}})
        admin.update_endpoint(ApplicationId=app_id, EndpointId="e1", EndpointRequest={
            "ChannelType": "EMAIL", "Address": "e1@example.com"})
        _, took = eventually(
            lambda: admin.get_endpoint(ApplicationId=app_id, EndpointId="e1"),
            lambda r: r["EndpointResponse"]["Address"] == "e1@example.com",
            "GetEndpoint through the separate projection")
        print(f"\nUpdateEndpoint → GetEndpoint with `lodestar projections`: {took:.2f} s")
        url = f"{urls['api']}/v1/apps/{app_id}/segments/{segment['SegmentResponse']['Id']}" \
              "/membership"
        auth = {"Authorization": f"Bearer {ADMIN_KEY[0]}:{ADMIN_KEY[1]}"}
        eventually(lambda: httpx.get(url, headers=auth, timeout=5).json(),
                   lambda b: b["SegmentMembershipResponse"]["Size"] == 1,
                   "the membership projection counts the member")
        procs.assert_alive()
    finally:
        procs.stop_all()
