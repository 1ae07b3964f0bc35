"""The templates repository against a real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from lodestar.control.templates import (
    ActiveVersionInUse,
    NotLatestVersion,
    TemplateExists,
    TemplatesRepository,
    VersionNotFound,
    valid_name,
)

pytestmark = pytest.mark.postgres

V1 = {"Subject": "Hi {{User.UserAttributes.FirstName.[0]}}", "TextPart": "one"}
V2 = {"Subject": "Hello", "TextPart": "two"}
V3 = {"Subject": "Hey", "TextPart": "three"}


def test_names() -> None:
    assert valid_name("welcome_2-a") and valid_name("a" * 128) and valid_name("9")
    assert not valid_name("") and not valid_name("a" * 129) and not valid_name("-a")
    assert not valid_name("has space") and not valid_name("dot.ted") and not valid_name("é")


async def test_create_versions_active_and_overwrite(pool: asyncpg.Pool) -> None:
    repo = TemplatesRepository(pool)
    t1 = await repo.create("EMAIL", "welcome", V1, {"team": "growth"})
    assert (t1.template_type, t1.name, t1.version, t1.active_version, t1.last_version) == (
        "EMAIL", "welcome", 1, 1, 1)
    assert t1.definition == V1 and t1.tags == {"team": "growth"}
    assert await repo.get("EMAIL", "welcome") == t1
    assert await repo.get("SMS", "welcome") is None  # unique per type
    with pytest.raises(TemplateExists):
        await repo.create("EMAIL", "welcome", V2)
    sms = await repo.create("SMS", "welcome", {"Body": "hi"})
    assert sms.version == 1

    t2 = await repo.update("EMAIL", "welcome", V2, new_version=True)
    assert t2 is not None and t2.version == 2 and t2.active_version == 1 and t2.last_version == 2
    still = await repo.get("EMAIL", "welcome")  # the active version stays 1
    assert still is not None and (still.version, still.definition) == (1, V1)
    assert (await repo.get("EMAIL", "welcome", 2)).definition == V2  # type: ignore[union-attr]

    over = await repo.update("EMAIL", "welcome", V3)  # overwrites the latest (2)
    assert over is not None and over.version == 2 and over.definition == V3
    assert over.modified_at >= over.version_created_at
    over2 = await repo.update("EMAIL", "welcome", V2, version=2)
    assert over2 is not None and over2.version == 2 and over2.definition == V2
    with pytest.raises(NotLatestVersion):
        await repo.update("EMAIL", "welcome", V3, version=1)
    with pytest.raises(VersionNotFound):
        await repo.update("EMAIL", "welcome", V3, version=9)
    assert await repo.update("EMAIL", "nope", V3) is None

    active = await repo.set_active("EMAIL", "welcome", None)  # latest
    assert active is not None and active.version == 2 and active.active_version == 2
    assert (await repo.get("EMAIL", "welcome")).version == 2  # type: ignore[union-attr]
    back = await repo.set_active("EMAIL", "welcome", 1)
    assert back is not None and back.version == 1 and back.definition == V1
    with pytest.raises(VersionNotFound):
        await repo.set_active("EMAIL", "welcome", 7)
    assert await repo.set_active("EMAIL", "nope", 1) is None

    versions = await repo.list_versions("EMAIL", "welcome", 10)
    assert versions is not None and [v.version for v in versions] == [1, 2]
    page = await repo.list_versions("EMAIL", "welcome", 1, after_version=1)
    assert page is not None and [v.version for v in page] == [2]
    assert await repo.list_versions("EMAIL", "nope", 10) is None


async def test_delete_versions_and_numbers_are_never_reused(pool: asyncpg.Pool) -> None:
    repo = TemplatesRepository(pool)
    await repo.create("PUSH", "promo", {"Default": {"Body": "1"}})
    for body in ("2", "3"):
        await repo.update("PUSH", "promo", {"Default": {"Body": body}}, new_version=True)
    with pytest.raises(ActiveVersionInUse):
        await repo.delete("PUSH", "promo", 1)  # active, and other versions exist
    with pytest.raises(VersionNotFound):
        await repo.delete("PUSH", "promo", 8)
    gone = await repo.delete("PUSH", "promo", 3)
    assert gone is not None and not gone.all_versions and gone.template.version == 1
    assert await repo.get("PUSH", "promo", 3) is None
    # the latest existing version is now 2: plain updates overwrite it …
    over = await repo.update("PUSH", "promo", {"Default": {"Body": "2b"}})
    assert over is not None and over.version == 2
    # … and a new version is 4, never 3 again
    v4 = await repo.update("PUSH", "promo", {"Default": {"Body": "4"}}, new_version=True)
    assert v4 is not None and v4.version == 4 and v4.last_version == 4

    everything = await repo.delete("PUSH", "promo")
    assert everything is not None and everything.all_versions
    assert await repo.get("PUSH", "promo") is None
    assert await repo.delete("PUSH", "promo") is None
    assert await pool.fetchval("SELECT count(*) FROM template_versions") == 0

    await repo.create("VOICE", "only", {"Body": "x"})
    last = await repo.delete("VOICE", "only", 1)  # the only version: the template goes
    assert last is not None and last.all_versions
    assert await pool.fetchval("SELECT count(*) FROM templates") == 0


async def test_list_by_name_with_prefix_type_and_pages(pool: asyncpg.Pool) -> None:
    repo = TemplatesRepository(pool)
    await repo.create("SMS", "b_sms", {"Body": "x"})
    await repo.create("EMAIL", "a_mail", V1)
    await repo.create("SMS", "a_mail", {"Body": "y"})
    await repo.create("EMAIL", "aXmail", V1)
    await repo.update("EMAIL", "a_mail", V2, new_version=True)

    listed = await repo.list_templates(10)
    # names in byte order ("X" < "_"), then type
    assert [(t.name, t.template_type) for t in listed] == [
        ("aXmail", "EMAIL"), ("a_mail", "EMAIL"), ("a_mail", "SMS"), ("b_sms", "SMS")]
    assert listed[1].version == 1  # the active version
    prefixed = await repo.list_templates(10, prefix="a_")  # '_' is literal, not LIKE's
    assert [(t.name, t.template_type) for t in prefixed] == [
        ("a_mail", "EMAIL"), ("a_mail", "SMS")]
    only_sms = await repo.list_templates(10, template_type="SMS")
    assert [t.name for t in only_sms] == ["a_mail", "b_sms"]
    first = await repo.list_templates(2)
    rest = await repo.list_templates(2, (first[-1].name, first[-1].template_type))
    assert [(t.name, t.template_type) for t in first + rest] == [
        (t.name, t.template_type) for t in listed]
