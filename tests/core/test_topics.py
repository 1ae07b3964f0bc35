from lodestar.core.topics import SEND_TOPICS, Topic, dlq_name, topic_name


def test_physical_names() -> None:
    assert topic_name("lodestar", Topic.EVENTS) == "lodestar.events"
    assert topic_name("lodestar", Topic.SEND_SMS) == "lodestar.send.sms"
    assert dlq_name("t1", Topic.DELIVERIES) == "t1.deliveries.dlq"


def test_only_control_is_compacted() -> None:
    assert [t for t in Topic if t.compacted] == [Topic.CONTROL]


def test_every_channel_has_a_send_topic() -> None:
    assert {t.value for t in SEND_TOPICS} == {
        "send.email", "send.sms", "send.push", "send.voice", "send.custom"
    }
