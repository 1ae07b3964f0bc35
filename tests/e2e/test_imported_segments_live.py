"""Imported segments on the real stack: an import job's rows become members through the engine.

boto3 creates an import job from a CSV file with DefineSegment; the API's
runner publishes UPSERT and ADD_TO_SEGMENT commands; the worker makes each
endpoint a member of the IMPORT segment (cause ``import``), and a dynamic
segment built on it (SegmentGroups with the imported segment as source) follows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.processes import Processes
from tests.e2e.test_endpoints_boto3 import client
from tests.e2e.topic_reader import TopicReader

from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = pytest.mark.e2e

ROWS = 300


def test_import_job_members_flow_into_segments_built_on_them(
    lodestar: tuple[Processes, dict], settings: Settings, unique: str, tmp_path: Path
) -> None:
    procs, urls = lodestar
    admin = client(urls["api"], *ADMIN_KEY)
    app_id = admin.create_app(CreateApplicationRequest={"Name": f"imp-{unique}"})[
        "ApplicationResponse"]["Id"]
    source = tmp_path / "newsletter.csv"
    lines = ["Id,ChannelType,Address,Attributes.plan"]
    lines += [f"n{i},EMAIL,n{i}@example.com,{'pro' if i % 2 else 'free'}" for i in range(ROWS)]
    lines.append("bad,FAX,fax@example.com,pro")  # not a ChannelType: a per-row failure
    source.write_text("\n".join(lines) + "\n")

    with TopicReader(settings.kafka_bootstrap, settings.topic(Topic.SEGMENT_MEMBERSHIP),
                     Topic.SEGMENT_MEMBERSHIP, AvroCodec.default()) as reader:
        job = admin.create_import_job(ApplicationId=app_id, ImportJobRequest={
            "Format": "CSV", "S3Url": source.as_uri(), "RoleArn": "arn:aws:iam::1:role/x",
            "DefineSegment": True, "SegmentName": "Newsletter", "RegisterEndpoints": True,
        })["ImportJobResponse"]
        imported = job["Definition"]["SegmentId"]
        done = _until(lambda: admin.get_import_job(ApplicationId=app_id, JobId=job["Id"])[
            "ImportJobResponse"], lambda j: j["JobStatus"] in ("COMPLETED", "FAILED"))
        assert done["JobStatus"] == "COMPLETED", done
        assert done["TotalProcessed"] == ROWS and done["TotalFailures"] == 1

        reader.wait_for(lambda rs: sum(
            1 for r in rs if r["segment_id"] == imported and r["change"] == "ENTER"
            and r["cause"] == "import") == ROWS, "every imported row ENTERs the IMPORT segment")

        pro = admin.create_segment(ApplicationId=app_id, WriteSegmentRequest={
            "Name": "newsletter-pro", "SegmentGroups": {"Include": "ALL", "Groups": [{
                "SourceType": "ALL", "SourceSegments": [{"Id": imported}],
                "Type": "ALL", "Dimensions": [{"Attributes": {
                    "plan": {"AttributeType": "INCLUSIVE", "Values": ["pro"]}}}]}]}})
        pro_id = pro["SegmentResponse"]["Id"]
        reader.wait_for(lambda rs: sum(
            1 for r in rs if r["segment_id"] == pro_id and r["change"] == "ENTER") == ROWS // 2,
            "the segment built on the import is backfilled")

        # an endpoint that leaves the dimension leaves the derived segment, not the import
        admin.update_endpoint(ApplicationId=app_id, EndpointId="n1",
                              EndpointRequest={"Attributes": {"plan": ["free"]}})
        reader.wait_for(lambda rs: any(
            r["segment_id"] == pro_id and r["endpoint_id"] == "n1" and r["change"] == "EXIT"
            for r in rs), "n1 exits newsletter-pro")
        assert not any(r["segment_id"] == imported and r["change"] == "EXIT"
                       for r in reader.records())

    body = _until(lambda: _membership(urls["api"], app_id, imported),
                  lambda b: b["Size"] == ROWS)
    assert body["ChannelCounts"] == {"EMAIL": ROWS}
    procs.assert_alive()


def _membership(api: str, app_id: str, segment_id: str) -> dict[str, Any]:
    response = httpx.get(f"{api}/v1/apps/{app_id}/segments/{segment_id}/membership",
                         headers={"Authorization": f"Bearer {ADMIN_KEY[0]}:{ADMIN_KEY[1]}"},
                         timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json()["SegmentMembershipResponse"])


def _until(read: Any, check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not check(value):
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout}s: {value}")
        time.sleep(0.3)
        value = read()
    return value
