"""Encode and decode Lodestar topic values: Avro single-object encoding.

Contracts of ``AvroCodec``:

- ``encode`` writes ``C3 01 | fingerprint | Avro body`` and never writes a
  record that does not match the topic's schema: it raises ``EncodeError``
  naming the schema, the field path and the problem instead.
- ``decode`` accepts only bytes written with the topic's schema (current or
  an older version under ``schemas/history``), read completely, nothing
  left over; otherwise ``DecodeError`` with the ``DlqReason`` to use.
- Records are plain dicts in both directions. Timestamps are epoch-millisecond
  ints; unions take plain values (``None`` or the value); a discriminated
  union (``send_request.content``) takes the plain record and its branch
  follows the discriminating field (``channel``).
- Send requests must carry the channel of their topic (``EMAIL`` on
  ``send.email`` …), checked on both sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any, cast

from fastavro import schemaless_reader, schemaless_writer

from lodestar.contracts.dlq import DeadLetterEnvelope, envelope_record
from lodestar.contracts.errors import ContractError, DecodeError, EncodeError
from lodestar.contracts.explain import describe_value, explain
from lodestar.contracts.fast_reader import Reader, UnsupportedSchema, compile_reader
from lodestar.contracts.fast_writer import Writer, compile_writer
from lodestar.contracts.guard import Preparer, compile_preparer
from lodestar.contracts.headers import Headers, dead_letter_headers, schema_headers
from lodestar.contracts.reasons import DlqReason
from lodestar.contracts.registry import (
    SEND_CHANNELS,
    SchemaEntry,
    SchemaRegistry,
    WriterSchema,
    default_registry,
    parse_topic_name,
)
from lodestar.contracts.wire import HEADER_SIZE, FramingError, read_fingerprint
from lodestar.core.topics import Topic

Record = dict[str, Any]

__all__ = ["AvroCodec", "ContractError", "DecodeError", "EncodeError", "Record"]


_UNBUILT: Any = object()


class _Binding:
    """Everything ``encode``/``decode`` need for one schema, looked up once."""

    __slots__ = ("channel", "entry", "prepare", "writer")

    def __init__(self, entry: SchemaEntry, prepare: Preparer, channel: str | None) -> None:
        self.entry = entry
        self.prepare = prepare
        self.channel = channel
        self.writer: Writer | None = _UNBUILT
        """The compiled writer (header included) of ``entry``, made on first ``encode``;
        None: write with fastavro."""


class AvroCodec:
    """Turns records into Kafka values and back, for every Lodestar topic.

    Build one per process (it is immutable and thread-safe; its only state is caches of
    compiled readers and writers, ``contracts.fast_reader`` and ``contracts.fast_writer``)
    and pass it down. Values written with a current schema are read by the compiled
    reader; anything else, or anything it refuses, by fastavro (the reference: same
    records, same errors). Records are written by the compiled writer of their schema;
    any record it refuses by fastavro (same bytes, same errors).
    """

    @classmethod
    def default(cls) -> AvroCodec:
        """A codec over the installed schemas (``default_registry()``, loaded once)."""
        return cls(default_registry())

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        preparers = {entry.stem: compile_preparer(entry) for entry in self.registry}
        self._topics: dict[Topic, _Binding] = {}
        for topic in Topic:
            entry = self.registry.for_topic(topic)
            self._topics[topic] = _Binding(entry, preparers[entry.stem], SEND_CHANNELS.get(topic))
        dead = self.registry.dead_letter
        self._dead_letter = _Binding(dead, preparers[dead.stem], None)
        self._writers: dict[str, Writer | None] = {}
        """Compiled writers by schema stem, made on first use (compiling them all would
        cost ~35 ms per process)."""
        self._fast: dict[bytes, Reader | None] = {}
        """Compiled readers (``contracts.fast_reader``) by writer fingerprint, made on first
        use, for values written with a current schema; None: read those with fastavro."""

    # -- topic values ---------------------------------------------------------------

    def encode(self, topic: Topic, record: Mapping[str, Any]) -> bytes:
        """The Kafka value for ``record`` on ``topic``; ``EncodeError`` if it does not match."""
        return self._encode(self._topics[topic], record, topic)

    def encode_many(self, topic: Topic, records: Iterable[Mapping[str, Any]]) -> list[bytes]:
        """``encode`` each record; the ``EncodeError`` of the first bad one names its index."""
        binding = self._topics[topic]
        out: list[bytes] = []
        for index, record in enumerate(records):
            try:
                out.append(self._encode(binding, record, topic))
            except EncodeError as exc:
                raise EncodeError(
                    f"record {index}: {exc}", schema=exc.schema, path=exc.path, reason=exc.reason
                ) from None
        return out

    def decode(self, topic: Topic, data: bytes) -> Record:
        """The record in Kafka value ``data`` read from ``topic``; ``DecodeError`` if unreadable."""
        binding = self._topics[topic]
        record = self._read(binding.entry, data)
        if binding.channel is not None and record.get("channel") != binding.channel:
            raise DecodeError(
                f"{binding.entry.stem}: field 'channel': {record.get('channel')!r} does not belong "
                f"on topic {topic.value} (expected {binding.channel!r})",
                schema=binding.entry.stem,
                path="channel",
                reason=DlqReason.VALIDATION_ERROR,
            )
        return record

    def decode_many(self, topic: Topic, values: Iterable[bytes]) -> list[Record | DecodeError]:
        """``decode`` each value; a bad one yields its ``DecodeError`` in place (batch consumers
        dead-letter those and keep the rest)."""
        out: list[Record | DecodeError] = []
        for data in values:
            try:
                out.append(self.decode(topic, data))
            except DecodeError as exc:
                out.append(exc)
        return out

    def encode_for_name(self, topic_name: str, record: Mapping[str, Any]) -> bytes:
        """``encode`` for a topic given by name (``lodestar.send.sms``, ``lodestar.events.dlq``);
        dead-letter topics take the ``lodestar.v1.DeadLetter`` record form."""
        topic, dead_letter = parse_topic_name(topic_name)
        if dead_letter:
            return self.encode_dlq(record)
        return self.encode(topic, record)

    def decode_for_name(self, topic_name: str, data: bytes) -> Record:
        """``decode`` for a topic given by name; dead-letter topics yield the envelope record."""
        topic, dead_letter = parse_topic_name(topic_name)
        if dead_letter:
            return self._read(self._dead_letter.entry, data)
        return self.decode(topic, data)

    def decode_any(self, data: bytes) -> tuple[SchemaEntry, Record]:
        """Decode a value of any Lodestar schema, identified by its fingerprint (for tools)."""
        writer = self._writer(None, data)
        return writer.entry, self._read(writer.entry, data)

    def headers(self, topic: Topic) -> Headers:
        """Kafka headers for a value of ``topic``: ``[("lodestar-schema", b"lodestar.v1.…")]``."""
        return schema_headers(self._topics[topic].entry)

    # -- dead letters -----------------------------------------------------------------

    def encode_dlq(self, envelope: DeadLetterEnvelope | Mapping[str, Any]) -> bytes:
        """The value of a ``lodestar.v1.DeadLetter`` on any ``<topic>.dlq`` topic.

        ``envelope`` is a ``DeadLetterEnvelope`` or its record form (see
        ``envelope_record`` for the header shapes accepted).
        """
        return self._encode(self._dead_letter, envelope_record(envelope), None)

    def decode_dlq(self, data: bytes) -> DeadLetterEnvelope:
        """The envelope in a value read from a ``<topic>.dlq`` topic."""
        return DeadLetterEnvelope.from_record(self._read(self._dead_letter.entry, data))

    def dlq_headers(self, reason: DlqReason | None = None) -> Headers:
        """Kafka headers of a dead-letter record: its schema, and ``lodestar-dlq-reason``
        when ``reason`` is given."""
        if reason is None:
            return schema_headers(self._dead_letter.entry)
        return dead_letter_headers(self._dead_letter.entry, reason)

    # -- internals ----------------------------------------------------------------------

    def _encode(self, binding: _Binding, record: Mapping[str, Any], topic: Topic | None) -> bytes:
        entry = binding.entry
        try:
            prepared = binding.prepare(record)
            if binding.channel is not None and prepared.get("channel") != binding.channel:
                raise ValueError("channel does not match the topic")
            fast = binding.writer
            if fast is _UNBUILT:
                fast = self._fast_writer(binding)
            if fast is not None:
                try:
                    return fast(prepared)
                except Exception:  # refused: fastavro below gives the bytes or the error
                    pass
            buffer = BytesIO()
            buffer.write(entry.header)
            schemaless_writer(buffer, entry.wire, prepared, strict_allow_default=True)
        except Exception as exc:
            raise _encode_error(binding, record, topic, exc) from None
        return buffer.getvalue()

    def _fast_writer(self, binding: _Binding) -> Writer | None:
        stem = binding.entry.stem
        if stem not in self._writers:
            writer: Writer | None
            try:
                writer = compile_writer(binding.entry.wire, binding.entry.header)
            except Exception:  # UnsupportedSchema, or a bug: fastavro writes this schema
                writer = None
            self._writers[stem] = writer
        binding.writer = self._writers[stem]
        return binding.writer

    def _writer(self, expected: SchemaEntry | None, data: bytes) -> WriterSchema:
        stem = expected.stem if expected is not None else "lodestar"
        try:
            fingerprint = read_fingerprint(data)
        except FramingError as exc:
            raise DecodeError(
                f"{stem}: {exc}", schema=stem, reason=DlqReason.DECODE_ERROR
            ) from None
        writer = self.registry.writer(fingerprint)
        if writer is None:
            raise DecodeError(
                f"{stem}: unknown schema fingerprint {fingerprint.hex()}: not written with a "
                "Lodestar schema this version knows (a newer producer, or another system)",
                schema=stem,
                reason=DlqReason.SCHEMA_MISMATCH,
            )
        if expected is not None and writer.entry is not expected:
            raise DecodeError(
                f"{stem}: expected {expected.full_name} but the bytes were written with "
                f"{writer.entry.full_name} (schema {writer.entry.stem}): wrong topic?",
                schema=stem,
                reason=DlqReason.SCHEMA_MISMATCH,
            )
        return writer

    def _fast_reader(self, writer: WriterSchema) -> Reader | None:
        if writer.fingerprint not in self._fast:
            reader: Reader | None = None
            if writer.reader_wire is None:
                try:
                    reader = compile_reader(writer.wire)
                except (UnsupportedSchema, KeyError, TypeError, ValueError):
                    reader = None
            self._fast[writer.fingerprint] = reader
        return self._fast[writer.fingerprint]

    def _read(self, expected: SchemaEntry, data: bytes) -> Record:
        writer = self._writer(expected, data)
        fast = self._fast_reader(writer) if type(data) is bytes else None
        if fast is not None:
            try:
                fast_record, end = fast(data, HEADER_SIZE)
            except Exception:  # malformed: fastavro below gives the answer and the error
                pass
            else:
                if end == len(data):
                    return fast_record
        stream = BytesIO(data)
        stream.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(stream, writer.wire, writer.reader_wire)
        except Exception as exc:
            if isinstance(exc, EOFError):
                problem = f"truncated: the data ends (at byte {len(data)}) inside the record"
            else:
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                where = f"near byte {stream.tell()} of {len(data)}"
                problem = f"corrupt body (failed {where}): {detail}"
            raise DecodeError(
                f"{expected.stem}: {problem}",
                schema=expected.stem,
                reason=DlqReason.DECODE_ERROR,
            ) from None
        end = stream.tell()
        if end != len(data):
            raise DecodeError(
                f"{expected.stem}: {len(data) - end} unexpected byte(s) after the record "
                f"(it ends at byte {end} of {len(data)})",
                schema=expected.stem,
                reason=DlqReason.DECODE_ERROR,
            )
        return cast(Record, record)


def _encode_error(
    binding: _Binding, record: Any, topic: Topic | None, exc: Exception
) -> EncodeError:
    entry = binding.entry
    try:
        problem = explain(entry, record)
    except Exception:  # explaining must never hide the refusal itself
        problem = None
    if problem is not None:
        where = f"field '{problem.path}': " if problem.path else ""
        return EncodeError(
            f"{entry.stem}: {where}{problem.message}", schema=entry.stem, path=problem.path or None
        )
    if binding.channel is not None and topic is not None:
        channel = record.get("channel") if isinstance(record, Mapping) else None
        if channel != binding.channel:
            return EncodeError(
                f"{entry.stem}: field 'channel': {describe_value(channel)} does not belong on "
                f"topic {topic.value} (expected {binding.channel!r})",
                schema=entry.stem,
                path="channel",
            )
    return EncodeError(f"{entry.stem}: {type(exc).__name__}: {exc}", schema=entry.stem)
