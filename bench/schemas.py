#!/usr/bin/env python3
"""Typed events (issue 39): flumen decoding 1 KB Avro records into JSON with
the schema_decode interceptor into the null sink, against a Python
confluent-kafka consumer with Confluent's AvroDeserializer, and against
flumen reading the same topic raw (null sink, no interceptor). Reps are
interleaved, so a noisy moment hits every scenario alike; medians with
their spread, and peak RSS. Writes bench/schemas/results.md.

Run it with `scripts/bench.sh --schemas` (it builds what it needs).
Options: --events N (default 200000), --reps R (default 3).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the shared broker, load and flumen runner)

ROOT = run.ROOT
OUT = ROOT / "bench/schemas"
PARTITIONS = 4
SCHEMAS = ROOT / "tests/schemas"

# About 1 KB per record once encoded: a mix of Avro's types.
SCHEMA = {
    "type": "record", "name": "Event", "namespace": "bench",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "user", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "ok", "type": "boolean"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "note", "type": ["null", "string"]},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "body", "type": "string"},
    ],
}

PYTHON_CONSUMER = r'''
import json, sys, time
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
bootstrap, registry, topic, group, expected = sys.argv[1:6]
expected = int(expected)
deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry}))
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
c.subscribe([topic])
events, first = 0, None
def cpu():
    import resource
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
while events < expected:
    for m in c.consume(num_messages=500, timeout=0.1):
        if m.error():
            continue
        if first is None:
            first, cpu_first = time.monotonic(), cpu()
        value = deserialize(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
        events += 1
c.commit(asynchronous=False)
seconds, used = time.monotonic() - first, cpu() - cpu_first
c.close()
with open("/proc/self/status") as f:
    rss = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
print(json.dumps({"events": events, "seconds": seconds, "cpu": used, "rss_kib": rss}))
'''

PRODUCER = r'''
import json, sys
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
bootstrap, registry, topic, events, partitions, schema = sys.argv[1:7]
ser = AvroSerializer(SchemaRegistryClient({"url": registry}), schema)
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1000000,
              "queue.buffering.max.kbytes": 1048576, "acks": "all"})
body = "lorem ipsum dolor sit amet " * 35
counts = {}
for i in range(int(events)):
    v = {"id": i, "user": f"user-{i % 1000}", "score": i * 0.5, "ok": i % 2 == 0,
         "kind": "ABC"[i % 3], "note": None if i % 4 == 0 else f"note-{i}",
         "tags": [f"t{i % 7}", f"t{i % 11}", "x"], "attrs": {"a": i, "b": -i, "c": 7},
         "at": 1714564800000 + i, "body": body}
    value = ser(v, SerializationContext(topic, MessageField.VALUE))
    part = i % int(partitions)
    while True:
        try:
            p.produce(topic, value=value, partition=part)
            break
        except BufferError:
            p.poll(0.05)
    counts[part] = counts.get(part, 0) + 1
    if i % 10000 == 0:
        p.poll(0)
        if i == 0:
            print(len(value), file=sys.stderr)
p.flush(120)
print(json.dumps(counts))
'''


def config(bootstrap, registry, topic, group, decode):
    """The pipeline: null sink, behind schema_decode if `decode`. (A TOML
    table header is a full path, so [schema_registry] may come last.)"""
    components = f"""
[[pipeline.sink]]
name = "null"
component = "{run.GUESTS / 'null_sink.wasm'}"
"""
    if decode:
        components = f"""
[[pipeline.interceptor]]
name = "decode"
component = "{run.GUESTS / 'schema_decode.wasm'}"
schema_registry = true
{components}
[schema_registry]
urls = ["{registry}"]
"""
    return run.pipeline_config(bootstrap, topic, group, components)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tansu, bootstrap = run.start_tansu()
    work = Path(tempfile.mkdtemp())
    port = run.free_port()
    registry_proc = subprocess.Popen([sys.executable, str(SCHEMAS / "registry.py"), "--port", str(port),
                                      "--log", str(work / "requests.log")], stdout=subprocess.DEVNULL)
    registry = f"http://127.0.0.1:{port}"
    time.sleep(1)
    results = {}
    try:
        topic = "bench-avro"
        admin = run.AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_topics([run.NewTopic(topic, PARTITIONS, 1)]).values():
            f.result()
        print(f"producing {args.events} Avro events …", flush=True)
        produced = subprocess.run([sys.executable, "-c", PRODUCER, bootstrap, registry, topic,
                                   str(args.events), str(PARTITIONS), json.dumps(SCHEMA)],
                                  capture_output=True, text=True, check=True)
        size = int(produced.stderr.strip().splitlines()[0])
        end = {int(p): n for p, n in json.loads(produced.stdout.strip().splitlines()[-1]).items()}
        for rep in range(args.reps):
            for scenario in ("raw", "decode", "python"):
                group = f"bench-{scenario}-{rep}"
                with tempfile.TemporaryDirectory() as tmp:
                    tmp = Path(tmp)
                    if scenario == "python":
                        r = run.run_child([sys.executable, "-c", PYTHON_CONSUMER, bootstrap, registry,
                                           topic, group, str(args.events)])
                    else:
                        text = config(bootstrap, registry, topic, group, scenario == "decode")
                        r = run.run_flumen(bootstrap, topic, group, scenario, end, tmp, config=text)
                r["events_per_s"] = args.events / r["seconds"]
                results.setdefault(scenario, []).append(r)
                print(f"  rep {rep + 1} {scenario}: {r['events_per_s']:,.0f} ev/s, cpu {r['cpu']:.1f} s, "
                      f"rss {r['rss_mib']:.0f} MiB", flush=True)
        requests = [l for l in (work / "requests.log").read_text().splitlines() if "/schemas/" in l]
    finally:
        registry_proc.kill()
        tansu.kill()
    write(args, size, results, requests)


def med(runs, key):
    values = sorted(r[key] for r in runs)
    return statistics.median(values), values[0], values[-1]


def write(args, size, results, requests):
    lines = [
        "# Typed events: decoding Avro",
        "",
        f"{args.events:,} Avro records of {size} bytes (encoded, with the 5-byte frame) on "
        f"{PARTITIONS} partitions of tansu, {args.reps} interleaved reps; median (min–max).",
        "Written by `scripts/bench.sh --schemas` (bench/schemas.py).",
        "",
        "| scenario | events/s | CPU s | peak RSS MiB |",
        "|---|---:|---:|---:|",
    ]
    names = {"raw": "flumen raw: null sink", "decode": "flumen: schema_decode (Avro → JSON) + null sink",
             "python": "Python confluent-kafka + AvroDeserializer"}
    for s in ("raw", "decode", "python"):
        e, c, m = med(results[s], "events_per_s"), med(results[s], "cpu"), med(results[s], "rss_mib")
        lines.append(f"| {names[s]} | {e[0]:,.0f} ({e[1]:,.0f}–{e[2]:,.0f}) | {c[0]:.1f} ({c[1]:.1f}–{c[2]:.1f}) "
                     f"| {m[0]:.0f} ({m[1]:.0f}–{m[2]:.0f}) |")
    ratio = lambda a, b: [x["events_per_s"] / y["events_per_s"] for x, y in zip(results[a], results[b])]
    for label, a, b in (("decode / Python", "decode", "python"), ("decode / raw", "decode", "raw")):
        r = sorted(ratio(a, b))
        lines.append("")
        lines.append(f"{label}, paired by rep: median {statistics.median(r):.2f} ({r[0]:.2f}–{r[-1]:.2f})")
    lines += ["", f"Registry requests for schemas over the whole run (every scenario and rep): {len(requests)}", ""]
    (OUT / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
