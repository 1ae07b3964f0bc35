"""Contract tests: boto3's ``pinpoint`` client against the message-template operations.

The API runs in-process under uvicorn on a real port, on a real PostgreSQL
(migrated) and Kafka, as in ``test_segments_boto3.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from tests.api.live_api import ADMIN, Api
from tests.api.topic_records import topic_records

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.keys import control_key
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
EMAIL = {"Subject": "Hi {{User.UserAttributes.FirstName.[0]}}",
         "HtmlPart": "<p>Hello {{Attributes.plan.[0]}}</p>", "TextPart": "Hello",
         "Headers": [{"Name": "X-Campaign", "Value": "{{Id}}"}],
         "DefaultSubstitutions": json.dumps({"Attributes": {"plan": "free"}}),
         "TemplateDescription": "welcome mail", "tags": {"team": "growth"}}
EMAIL2 = {"Subject": "Second", "TextPart": "v2"}
EMAIL3 = {"Subject": "Third", "TextPart": "v3"}


def _fields(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def test_email_template_lifecycle(api: Api) -> None:
    client = api.admin()
    created = client.create_email_template(TemplateName="welcome", EmailTemplateRequest=EMAIL)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    body = created["CreateTemplateMessageBody"]
    arn = "arn:aws:mobiletargeting:eu-west-1:123456789012:templates/welcome/EMAIL"
    assert body["Arn"] == arn and body["Message"] == "Created" and body["RequestID"]

    got = client.get_email_template(TemplateName="welcome")["EmailTemplateResponse"]
    assert {k: got[k] for k in EMAIL} == EMAIL
    assert got["Arn"] == arn and got["TemplateName"] == "welcome"
    assert got["TemplateType"] == "EMAIL" and got["Version"] == "1"
    assert re.fullmatch(ISO, got["CreationDate"]) and re.fullmatch(ISO, got["LastModifiedDate"])

    # a new version does not become active by itself
    answer = client.update_email_template(TemplateName="welcome", CreateNewVersion=True,
                                          EmailTemplateRequest=EMAIL2)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answer["MessageBody"]["Message"] == "Accepted"
    assert client.get_email_template(TemplateName="welcome")[
        "EmailTemplateResponse"]["Version"] == "1"
    v2 = client.get_email_template(TemplateName="welcome", Version="2")["EmailTemplateResponse"]
    assert v2["Subject"] == "Second" and v2["Version"] == "2" and "HtmlPart" not in v2
    assert v2["tags"] == {"team": "growth"}  # the template's tags

    # without create-new-version the latest version is overwritten (also with version=latest)
    client.update_email_template(TemplateName="welcome", EmailTemplateRequest=EMAIL3)
    client.update_email_template(TemplateName="welcome", Version="2",
                                 EmailTemplateRequest={**EMAIL3, "TextPart": "v3b"})
    v2 = client.get_email_template(TemplateName="welcome", Version="2")["EmailTemplateResponse"]
    assert (v2["Subject"], v2["TextPart"]) == ("Third", "v3b")
    with pytest.raises(client.exceptions.BadRequestException, match="not the latest"):
        client.update_email_template(TemplateName="welcome", Version="1",
                                     EmailTemplateRequest=EMAIL2)

    # the active version
    active = client.update_template_active_version(
        TemplateName="welcome", TemplateType="EMAIL",
        TemplateActiveVersionRequest={"Version": "latest"})
    assert active["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert active["MessageBody"]["Message"] == "Accepted"
    assert client.get_email_template(TemplateName="welcome")[
        "EmailTemplateResponse"]["Version"] == "2"
    client.update_template_active_version(TemplateName="welcome", TemplateType="EMAIL",
                                          TemplateActiveVersionRequest={"Version": "1"})
    assert client.get_email_template(TemplateName="welcome")["EmailTemplateResponse"] == got

    # versions
    client.update_email_template(TemplateName="welcome", CreateNewVersion=True,
                                 EmailTemplateRequest=EMAIL2)
    versions = client.list_template_versions(TemplateName="welcome", TemplateType="EMAIL")[
        "TemplateVersionsResponse"]
    assert [v["Version"] for v in versions["Item"]] == ["1", "2", "3"]
    assert versions["Item"][0]["TemplateDescription"] == "welcome mail"
    assert versions["Item"][0]["TemplateType"] == "EMAIL" and "NextToken" not in versions
    page = client.list_template_versions(TemplateName="welcome", TemplateType="EMAIL",
                                         PageSize="2")["TemplateVersionsResponse"]
    rest = client.list_template_versions(TemplateName="welcome", TemplateType="EMAIL",
                                         PageSize="2", NextToken=page["NextToken"])[
        "TemplateVersionsResponse"]
    assert [v["Version"] for v in page["Item"] + rest["Item"]] == ["1", "2", "3"]
    assert "NextToken" not in rest

    # deleting one version; the active one is refused while others exist
    deleted = client.delete_email_template(TemplateName="welcome", Version="2")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_email_template(TemplateName="welcome", Version="2")
    with pytest.raises(client.exceptions.BadRequestException, match="active version"):
        client.delete_email_template(TemplateName="welcome", Version="1")
    assert [v["Version"] for v in client.list_template_versions(
        TemplateName="welcome", TemplateType="EMAIL")["TemplateVersionsResponse"]["Item"]] == [
        "1", "3"]

    # deleting everything
    client.delete_email_template(TemplateName="welcome")
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_email_template(TemplateName="welcome")
    with pytest.raises(client.exceptions.NotFoundException):
        client.list_template_versions(TemplateName="welcome", TemplateType="EMAIL")
    assert client.list_templates()["TemplatesResponse"]["Item"] == []


def test_every_type_and_listing(api: Api) -> None:
    client = api.admin()
    client.create_sms_template(TemplateName="otp", SMSTemplateRequest={
        "Body": "Code {{Attributes.code.[0]}}", "DefaultSubstitutions": '{"Attributes.code": "0"}'})
    client.create_push_template(TemplateName="promo", PushNotificationTemplateRequest={
        "Default": {"Action": "OPEN_APP", "Title": "Sale", "Body": "Now"},
        "APNS": {"Body": "iOS {{Demographic.Platform}}", "Sound": "default"}})
    client.create_voice_template(TemplateName="otp", VoiceTemplateRequest={
        "Body": "Your code", "LanguageCode": "en-US", "VoiceId": "Joanna"})
    client.create_in_app_template(TemplateName="banner", InAppTemplateRequest={
        "Layout": "TOP_BANNER", "Content": [{"BodyConfig": {"Body": "hi", "Alignment": "LEFT",
                                                            "TextColor": "#000000"}}]})
    created = client.create_email_template(TemplateName="otp-mail",
                                           EmailTemplateRequest={"Subject": "s", "TextPart": "t"})
    assert created["CreateTemplateMessageBody"]["Arn"].endswith(":templates/otp-mail/EMAIL")

    sms = client.get_sms_template(TemplateName="otp")["SMSTemplateResponse"]
    assert sms["Body"] == "Code {{Attributes.code.[0]}}" and sms["TemplateType"] == "SMS"
    push = client.get_push_template(TemplateName="promo")["PushNotificationTemplateResponse"]
    assert push["APNS"] == {"Body": "iOS {{Demographic.Platform}}", "Sound": "default"}
    assert push["Default"]["Action"] == "OPEN_APP" and push["TemplateType"] == "PUSH"
    voice = client.get_voice_template(TemplateName="otp")["VoiceTemplateResponse"]
    assert (voice["VoiceId"], voice["LanguageCode"]) == ("Joanna", "en-US")
    inapp = client.get_in_app_template(TemplateName="banner")["InAppTemplateResponse"]
    assert inapp["Layout"] == "TOP_BANNER" and inapp["TemplateType"] == "INAPP"
    assert inapp["Content"][0]["BodyConfig"]["Body"] == "hi"

    for update, kwargs in (
        (client.update_sms_template, {"SMSTemplateRequest": {
            "Body": "v2", "DefaultSubstitutions": '{"Attributes.code": "0"}'}}),
        (client.update_push_template,
         {"PushNotificationTemplateRequest": {"Default": {"Body": "v2"}}}),
        (client.update_voice_template, {"VoiceTemplateRequest": {"Body": "v2"}}),
        (client.update_in_app_template, {"InAppTemplateRequest": {"Layout": "MODAL"}}),
    ):
        name = "banner" if update == client.update_in_app_template else (
            "promo" if update == client.update_push_template else "otp")
        answer = update(TemplateName=name, **kwargs)
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert client.get_sms_template(TemplateName="otp")["SMSTemplateResponse"]["Body"] == "v2"
    assert client.get_in_app_template(TemplateName="banner")[
        "InAppTemplateResponse"]["Layout"] == "MODAL"

    everything = client.list_templates()["TemplatesResponse"]
    assert [(t["TemplateName"], t["TemplateType"]) for t in everything["Item"]] == [
        ("banner", "INAPP"), ("otp", "SMS"), ("otp", "VOICE"), ("otp-mail", "EMAIL"),
        ("promo", "PUSH")]
    assert everything["Item"][1]["DefaultSubstitutions"] == '{"Attributes.code": "0"}'
    assert all(t["Version"] == "1" and t["Arn"] for t in everything["Item"])
    assert "NextToken" not in everything
    prefixed = client.list_templates(Prefix="otp")["TemplatesResponse"]["Item"]
    assert [(t["TemplateName"], t["TemplateType"]) for t in prefixed] == [
        ("otp", "SMS"), ("otp", "VOICE"), ("otp-mail", "EMAIL")]
    typed = client.list_templates(Prefix="otp", TemplateType="VOICE")["TemplatesResponse"]
    assert [t["TemplateName"] for t in typed["Item"]] == ["otp"]
    seen: list[tuple[str, str]] = []
    token = None
    while True:
        kwargs = {"PageSize": "2", **({"NextToken": token} if token else {})}
        page = client.list_templates(**kwargs)["TemplatesResponse"]
        assert len(page["Item"]) <= 2
        seen += [(t["TemplateName"], t["TemplateType"]) for t in page["Item"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [(t["TemplateName"], t["TemplateType"]) for t in everything["Item"]]


def test_error_answers(api: Api) -> None:
    client = api.admin()
    with pytest.raises(client.exceptions.BadRequestException, match=r"Headers\[0\]\.Name"):
        client.create_email_template(TemplateName="bad", EmailTemplateRequest={
            "Subject": "s", "Headers": [{"Name": "Bad Name", "Value": "v"}]})
    with pytest.raises(client.exceptions.BadRequestException, match=r"APNS\.Action"):
        client.create_push_template(TemplateName="bad", PushNotificationTemplateRequest={
            "APNS": {"Action": "LAUNCH", "Body": "x"}})
    with pytest.raises(client.exceptions.BadRequestException, match="HtmlPart"):
        client.create_email_template(TemplateName="bad", EmailTemplateRequest={
            "HtmlPart": "{{#if}}unclosed"})
    with pytest.raises(client.exceptions.BadRequestException, match="DefaultSubstitutions"):
        client.create_sms_template(TemplateName="bad", SMSTemplateRequest={
            "Body": "x", "DefaultSubstitutions": "not json"})
    with pytest.raises(client.exceptions.BadRequestException, match="template-name"):
        client.create_sms_template(TemplateName="has.dot", SMSTemplateRequest={"Body": "x"})
    with pytest.raises(client.exceptions.BadRequestException, match="template-name"):
        client.create_sms_template(TemplateName="a" * 129, SMSTemplateRequest={"Body": "x"})
    assert client.list_templates()["TemplatesResponse"]["Item"] == []  # nothing stored

    client.create_sms_template(TemplateName="t1", SMSTemplateRequest={"Body": "x"})
    with pytest.raises(client.exceptions.BadRequestException, match="already exists"):
        client.create_sms_template(TemplateName="t1", SMSTemplateRequest={"Body": "y"})
    with pytest.raises(client.exceptions.BadRequestException, match="Body"):
        client.update_sms_template(TemplateName="t1", SMSTemplateRequest={"Body": "{{#if}}"})
    assert client.get_sms_template(TemplateName="t1")["SMSTemplateResponse"]["Body"] == "x"
    with pytest.raises(client.exceptions.BadRequestException, match="create-new-version"):
        client.update_sms_template(TemplateName="t1", CreateNewVersion=True, Version="1",
                                   SMSTemplateRequest={"Body": "y"})
    with pytest.raises(client.exceptions.BadRequestException, match="version"):
        client.get_sms_template(TemplateName="t1", Version="one")
    with pytest.raises(client.exceptions.BadRequestException, match="Version"):
        client.update_template_active_version(TemplateName="t1", TemplateType="SMS",
                                              TemplateActiveVersionRequest={})
    with pytest.raises(client.exceptions.BadRequestException, match="template-type"):
        client.list_template_versions(TemplateName="t1", TemplateType="FAX")
    with pytest.raises(client.exceptions.BadRequestException, match="template-type"):
        client.list_templates(TemplateType="FAX")
    with pytest.raises(client.exceptions.BadRequestException, match="page-size"):
        client.list_templates(PageSize="0")
    with pytest.raises(client.exceptions.BadRequestException, match="next-token"):
        client.list_templates(NextToken="garbage!")

    for call in (
        lambda: client.get_email_template(TemplateName="t1"),  # another type
        lambda: client.get_sms_template(TemplateName="t1", Version="2"),
        lambda: client.update_sms_template(TemplateName="nope", SMSTemplateRequest={"Body": "x"}),
        lambda: client.update_sms_template(TemplateName="t1", Version="9",
                                           SMSTemplateRequest={"Body": "x"}),
        lambda: client.delete_sms_template(TemplateName="nope"),
        lambda: client.delete_sms_template(TemplateName="t1", Version="4"),
        lambda: client.list_template_versions(TemplateName="nope", TemplateType="SMS"),
        lambda: client.update_template_active_version(
            TemplateName="t1", TemplateType="SMS", TemplateActiveVersionRequest={"Version": "3"}),
        lambda: client.update_template_active_version(
            TemplateName="nope", TemplateType="SMS",
            TemplateActiveVersionRequest={"Version": "latest"}),
    ):
        with pytest.raises(client.exceptions.NotFoundException) as err:
            call()
        error = err.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert error["Error"]["Message"] and error["ResponseMetadata"]["RequestId"]


def test_app_keys_may_not_touch_templates(api: Api) -> None:
    admin = api.admin()
    made = admin.create_app(CreateApplicationRequest={"Name": "Shop"})
    headers = made["ResponseMetadata"]["HTTPHeaders"]
    key = headers["x-lodestar-access-key-id"]
    secret = headers["x-lodestar-secret-access-key"]
    client = api.client(key, secret)
    with pytest.raises(client.exceptions.ForbiddenException):
        client.list_templates()
    with pytest.raises(client.exceptions.ForbiddenException):
        client.create_sms_template(TemplateName="x", SMSTemplateRequest={"Body": "x"})
    assert admin.list_templates()["TemplatesResponse"]["Item"] == []


async def _consume(settings: Settings, expected: int, within: float = 20.0) -> list[Any]:
    return await topic_records(settings, Topic.CONTROL, expected, within)


def test_changes_are_published_on_the_control_topic(api: Api) -> None:
    client = api.admin()
    client.create_email_template(TemplateName="news", EmailTemplateRequest=EMAIL)  # v1
    client.update_email_template(TemplateName="news", CreateNewVersion=True,
                                 EmailTemplateRequest=EMAIL2)  # v2, v1 stays active
    client.update_template_active_version(TemplateName="news", TemplateType="EMAIL",
                                          TemplateActiveVersionRequest={"Version": "2"})
    with pytest.raises(client.exceptions.BadRequestException):  # not published
        client.update_email_template(TemplateName="news",
                                     EmailTemplateRequest={"Subject": "{{#if}}"})
    client.delete_email_template(TemplateName="news", Version="1")
    client.delete_email_template(TemplateName="news")

    records = [r for r in asyncio.run(_consume(api.settings, 5))
               if r.key.startswith(b"TEMPLATE/")]
    assert len(records) == 5
    assert {r.key for r in records} == {control_key("TEMPLATE", None, "EMAIL/news")}
    codec = AvroCodec.default()
    decoded = [codec.decode(Topic.CONTROL, r.value) for r in records]
    assert all(d["entity_type"] == "TEMPLATE" and d["entity_id"] == "EMAIL/news"
               and d["app_id"] is None and d["actor"] == ADMIN[0] and d["timestamp"]
               for d in decoded)
    assert [(d["operation"], d["version"]) for d in decoded] == [
        ("UPSERT", 1), ("UPSERT", 2), ("UPSERT", 2), ("UPSERT", 2), ("DELETE", 2)]
    # the definition is the active version's response
    active = [json.loads(d["definition"])["Version"] for d in decoded[:4]]
    assert active == ["1", "1", "2", "2"]
    first = json.loads(decoded[0]["definition"])
    assert first["Subject"] == EMAIL["Subject"] and first["TemplateName"] == "news"
    assert json.loads(decoded[2]["definition"])["Subject"] == "Second"
    assert decoded[4]["definition"] is None
