"""Confluent's serializers and deserializers, for the Schema Registry tests
(tests/e2e/schemas.rs): the oracle that flumen's decoding is compared with.

    confluent.py produce --bootstrap B --registry URL --topic T --format avro
        --framing id|guid|header --first 0 --count 100 --version 1
    confluent.py expect --bootstrap B --registry URL --topic T --partitions 4
        --count 100

`produce` writes events `first .. first+count` with Confluent's serializer
in the given framing (id: magic byte 0 and the schema id; guid: magic byte
1 and the schema GUID; header: the GUID in the `__value_schema_id` header
and the payload unprefixed), round robin over the topic's partitions, and
prints nothing. `expect` reads the topic from the start with Confluent's
deserializer and prints one JSON line per event,
`{"partition":…,"offset":…,"value":…}`, the value rendered by the rules of
docs/schemas.md: what flumen's schema_decode must give for the same bytes.
"""

import argparse
import base64
import datetime
import decimal
import json
import sys
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import (SchemaRegistryClient,
                                             header_schema_id_serializer)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

AVRO_V1 = {
    "type": "record", "name": "User", "namespace": "flumen.test",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "active", "type": "boolean"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "nickname", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "int"}},
        {"name": "counts", "type": {"type": "map", "values": "long"}},
        {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": "string"}, {"name": "zip", "type": "int"}]}},
        {"name": "raw", "type": "bytes"},
        {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 4}},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal",
                                   "precision": 12, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
    ],
}
# v2 adds a field with a default: a compatible evolution.
AVRO_V2 = dict(AVRO_V1, fields=AVRO_V1["fields"] + [
    {"name": "note", "type": "string", "default": "none"}])

JSON_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Reading", "type": "object",
    "properties": {
        "sensor": {"type": "string"}, "value": {"type": "number"},
        "ok": {"type": "boolean"}, "labels": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["sensor", "value"],
}

UTC = datetime.timezone.utc


def avro_value(i, version):
    v = {
        "id": i, "name": f"user-{i}", "score": i * 0.5, "active": i % 2 == 0,
        "kind": "ABC"[i % 3], "nickname": None if i % 4 == 0 else f"nick-{i}",
        "tags": [i, -i], "counts": {"a": i, "b": -i * 1000},
        "address": {"city": f"city-{i % 7}", "zip": 1000 + i},
        "raw": bytes([i % 256, 0, 255]), "code": (i).to_bytes(4, "big"),
        "price": decimal.Decimal(i * 137 - 5000).scaleb(-2),
        "day": datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 400),
        "at": datetime.datetime(2024, 5, 1, tzinfo=UTC) + datetime.timedelta(milliseconds=i * 1001),
        "uid": uuid.UUID(int=i * 7919),
    }
    if version == 2:
        v["note"] = f"note-{i}"
    return v


def json_value(i, _version):
    return {"sensor": f"s-{i % 5}", "value": i / 4, "ok": i % 3 != 0, "labels": [f"l{i}"]}


def render(v):
    """A deserialized value as docs/schemas.md renders it."""
    if isinstance(v, dict):
        return {k: render(x) for k, x in v.items()}
    if isinstance(v, list):
        return [render(x) for x in v]
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, datetime.datetime):
        v = v.astimezone(UTC)
        return v.strftime("%Y-%m-%dT%H:%M:%S") + f".{v.microsecond // 1000:03d}Z"
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, uuid.UUID):
        return str(v)
    return v


def guid_prefix_serializer(payload, _ctx, schema_id):
    return schema_id.guid_to_bytes() + payload


def produce(a):
    client = SchemaRegistryClient({"url": a.registry})
    conf = {"auto.register.schemas": True}
    if a.framing == "guid":
        conf["schema.id.serializer"] = guid_prefix_serializer
    elif a.framing == "header":
        conf["schema.id.serializer"] = header_schema_id_serializer
    if a.format == "avro":
        schema = AVRO_V1 if a.version == 1 else AVRO_V2
        ser = AvroSerializer(client, json.dumps(schema), conf=conf)
        make = avro_value
    else:
        ser = JSONSerializer(json.dumps(JSON_SCHEMA), client, conf=conf)
        make = json_value
    producer = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "linger.ms": 5})
    failed = []
    for i in range(a.first, a.first + a.count):
        headers = []
        ctx = SerializationContext(a.topic, MessageField.VALUE, headers)
        value = ser(make(i, a.version), ctx)
        producer.produce(a.topic, value=value, key=str(i).encode(), headers=headers,
                         partition=i % a.partitions,
                         on_delivery=lambda err, _m: err and failed.append(err))
        producer.poll(0)
    producer.flush(30)
    if failed or len(producer):
        sys.exit(f"produce failed: {failed[:3]}, {len(producer)} unsent")


def expect(a):
    client = SchemaRegistryClient({"url": a.registry})
    deserializers = {"avro": AvroDeserializer(client), "json": JSONDeserializer(None, schema_registry_client=client)}
    consumer = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "confluent-expect",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(a.topic, p, 0) for p in range(a.partitions)])
    got = 0
    while got < a.count:
        m = consumer.poll(30)
        if m is None:
            sys.exit(f"expect: only {got} of {a.count} events arrived")
        if m.error():
            continue
        headers = m.headers() or []
        ctx = SerializationContext(m.topic(), MessageField.VALUE, headers)
        value = deserializers[a.format](m.value(), ctx)
        print(json.dumps({"partition": m.partition(), "offset": m.offset(), "value": render(value)}))
        got += 1
    consumer.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["produce", "expect"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--format", choices=["avro", "json"], default="avro")
    p.add_argument("--framing", choices=["id", "guid", "header"], default="id")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--version", type=int, default=1)
    a = p.parse_args()
    produce(a) if a.command == "produce" else expect(a)


if __name__ == "__main__":
    main()
