"""Confluent's serializers and deserializers, for the Schema Registry tests
(tests/e2e/schemas/): the oracle that flumen's decoding is compared with.

    confluent.py produce --bootstrap B --registry URL --topic T --format avro
        --framing id|guid|header --first 0 --count 100 --version 1
    confluent.py expect --bootstrap B --registry URL --topic T --partitions 4
        --count 100
    confluent.py schema --bootstrap B --registry URL --topic T --count 0 [--version 2]

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
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, text_format
from google.protobuf import timestamp_pb2  # noqa: F401 (puts Timestamp in the default pool)

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

# Protobuf: an Order in order.proto, which imports address.proto (a schema
# reference, registered under its own subject) and the well-known
# Timestamp (which Confluent's serializer does not register). Written as
# descriptors, so that no protoc is needed.
ADDRESS_PROTO = '''
name: "address.proto" package: "shop" syntax: "proto3"
message_type { name: "Address"
  field { name: "city" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "city" }
  field { name: "zip" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL json_name: "zip" } }
'''
ORDER_PROTO = '''
name: "order.proto" package: "shop" syntax: "proto3"
dependency: "address.proto" dependency: "google/protobuf/timestamp.proto"
message_type { name: "Order"
  field { name: "id" number: 1 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "id" }
  field { name: "ship_to" number: 2 type: TYPE_MESSAGE type_name: ".shop.Address" label: LABEL_OPTIONAL json_name: "shipTo" }
  field { name: "placed_at" number: 3 type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" label: LABEL_OPTIONAL json_name: "placedAt" }
  field { name: "lines" number: 4 type: TYPE_MESSAGE type_name: ".shop.Order.Line" label: LABEL_REPEATED json_name: "lines" }
  field { name: "status" number: 5 type: TYPE_ENUM type_name: ".shop.Order.Status" label: LABEL_OPTIONAL json_name: "status" }
  field { name: "counts" number: 6 type: TYPE_MESSAGE type_name: ".shop.Order.CountsEntry" label: LABEL_REPEATED json_name: "counts" }
  field { name: "card" number: 7 type: TYPE_STRING label: LABEL_OPTIONAL oneof_index: 0 json_name: "card" }
  field { name: "cash" number: 8 type: TYPE_BOOL label: LABEL_OPTIONAL oneof_index: 0 json_name: "cash" }
  field { name: "raw" number: 9 type: TYPE_BYTES label: LABEL_OPTIONAL json_name: "raw" }
  field { name: "amount" number: 10 type: TYPE_DOUBLE label: LABEL_OPTIONAL json_name: "amount" }
  field { name: "rush" number: 11 type: TYPE_BOOL label: LABEL_OPTIONAL json_name: "rush" }
  nested_type { name: "Line"
    field { name: "sku" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "sku" }
    field { name: "qty" number: 2 type: TYPE_UINT32 label: LABEL_OPTIONAL json_name: "qty" } }
  nested_type { name: "CountsEntry" options { map_entry: true }
    field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "key" }
    field { name: "value" number: 2 type: TYPE_SINT64 label: LABEL_OPTIONAL json_name: "value" } }
  enum_type { name: "Status" value { name: "NEW" number: 0 } value { name: "PAID" number: 1 } value { name: "SENT" number: 2 } }
  oneof_decl { name: "payment" } }
'''


def order_class():
    pool = descriptor_pool.Default()
    for text in (ADDRESS_PROTO, ORDER_PROTO):
        proto = text_format.Parse(text, descriptor_pb2.FileDescriptorProto())
        try:
            pool.Add(proto)
        except TypeError:
            pass  # already added
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))


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


def proto_value(i, _version):
    order = order_class()()
    order.id = i * 1_000_003
    order.ship_to.city = f"city-{i % 7}"
    order.ship_to.zip = 1000 + i
    order.placed_at.FromDatetime(datetime.datetime(2024, 5, 1) + datetime.timedelta(milliseconds=i * 1001))
    for n in range(i % 3 + 1):
        line = order.lines.add()
        line.sku, line.qty = f"sku-{i}-{n}", n + 1
    order.status = i % 3
    order.counts["a"] = i
    order.counts["b"] = -i
    if i % 2:
        order.card = f"card-{i}"
    else:
        order.cash = True
    order.raw = bytes([i % 256, 0, 255])
    order.amount = i * 0.25
    order.rush = i % 5 == 0
    return order


def json_value(i, _version):
    return {"sensor": f"s-{i % 5}", "value": i / 4, "ok": i % 3 != 0, "labels": [f"l{i}"]}


def render(v):
    """A deserialized value as docs/schemas.md renders it."""
    if hasattr(v, "DESCRIPTOR"):
        return json_format.MessageToDict(v, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
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


def registry_client(a):
    conf = {"url": a.registry}
    if a.registry_ca:
        conf["ssl.ca.location"] = a.registry_ca
    if a.registry_auth:
        conf["basic.auth.user.info"] = a.registry_auth
    return SchemaRegistryClient(conf)


def produce(a):
    client = registry_client(a)
    conf = {"auto.register.schemas": True}
    if a.framing == "guid":
        conf["schema.id.serializer"] = guid_prefix_serializer
    elif a.framing == "header":
        conf["schema.id.serializer"] = header_schema_id_serializer
    if a.format == "avro":
        schema = AVRO_V1 if a.version == 1 else AVRO_V2
        ser = AvroSerializer(client, json.dumps(schema), conf=conf)
        make = avro_value
    elif a.format == "protobuf":
        ser = ProtobufSerializer(order_class(), client, conf=dict(conf, **{"use.deprecated.format": False}))
        make = proto_value
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
    client = registry_client(a)
    deserializers = {
        "avro": AvroDeserializer(client),
        "json": JSONDeserializer(None, schema_registry_client=client),
        "protobuf": ProtobufDeserializer(order_class(), {"use.deprecated.format": False}, client),
    }
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
    p.add_argument("command", choices=["produce", "expect", "schema"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--registry-ca", help="the CA file of an https registry")
    p.add_argument("--registry-auth", help="USER:PASSWORD for a registry with basic auth")
    p.add_argument("--format", choices=["avro", "json", "protobuf"], default="avro")
    p.add_argument("--framing", choices=["id", "guid", "header"], default="id")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--version", type=int, default=1)
    a = p.parse_args()
    if a.command == "schema":
        # The Avro schema (v1 or v2), for a test's encoder to register.
        print(json.dumps(AVRO_V1 if a.version == 1 else AVRO_V2))
    elif a.command == "produce":
        produce(a)
    else:
        expect(a)


if __name__ == "__main__":
    main()
