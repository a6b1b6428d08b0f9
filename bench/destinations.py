#!/usr/bin/env python3
"""Real destinations (issue 21): the s3 sink against SeaweedFS and the
clickhouse sink against clickhouse-server, each beside what a user would
write instead: a Python confluent-kafka consumer putting the same objects
with boto3, and one inserting the same rows over ClickHouse's HTTP
interface (urllib; clickhouse-connect needs a newer server than Debian's
18.16). Both sides gather 5,000 events per partition into one object or
insert, and commit after it. 4 partitions of 1000-byte events on tansu.
Writes bench/destinations/results.md.

Run it with `scripts/bench.sh --destinations` (it builds what it needs).
Options: --events N (default 100000), --reps R (default 3).
"""

import argparse
import base64
import http.client as http_client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the shared broker, load and flumen runner)
import slow_sink  # noqa: E402  (measure)

OUT = run.ROOT / "bench/destinations"
PARTITIONS = 4
SIZE = 1000
BATCH = 5000
ACCESS, SECRET = "AKIABENCH", "bench-secret-key"
CH_USER, CH_PASSWORD = "bench", "bench-password"


def wait_port(port, proc, what, seconds=60):
    deadline = time.time() + seconds
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited")
        try:
            run.socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit(f"{what} did not start")
            time.sleep(0.2)


def http(url, method="GET", body=b"", headers=None):
    req = urllib.request.Request(url, data=body if method != "GET" else None, method=method,
                                 headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


def start_weed(work: Path):
    ids = work / "ids.json"
    ids.write_text(json.dumps({"identities": [{
        "name": "bench", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (work / "data").mkdir()
    s3, filer = run.free_port(), run.free_port()
    ports = {"s3.port": s3, "filer.port": filer}
    for k in ["master.port", "volume.port", "master.port.grpc", "volume.port.grpc",
              "filer.port.grpc", "s3.port.grpc"]:
        ports[k] = run.free_port()
    cmd = [str(run.ROOT / ".tools/weed/weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-s3", f"-dir={work / 'data'}", f"-s3.config={ids}", "-s3.port.iceberg=0",
           "-s3.port.lance=0", "-volume.max=0",
           "-master.volumeSizeLimitMB=512"] + [f"-{k}={v}" for k, v in ports.items()]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(work / "weed.log", "w"))
    wait_port(s3, proc, "weed")
    deadline = time.time() + 60
    while True:
        try:
            if http(f"http://127.0.0.1:{filer}/probe/ready", "PUT", b"ok")[0] == 201:
                break
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit("weed's filer did not start")
        time.sleep(0.3)
    return proc, s3, filer


def start_clickhouse(work: Path):
    port = run.free_port()
    (work / "config.xml").write_text(f"""<?xml version="1.0"?>
<yandex><logger><level>warning</level><console>1</console></logger>
<http_port>{port}</http_port><listen_host>127.0.0.1</listen_host>
<path>{work}/data/</path><tmp_path>{work}/tmp/</tmp_path>
<users_config>{work}/users.xml</users_config>
<default_profile>default</default_profile><default_database>default</default_database>
<mark_cache_size>536870912</mark_cache_size></yandex>""")
    (work / "users.xml").write_text(f"""<?xml version="1.0"?>
<yandex><profiles><default></default></profiles><users><{CH_USER}>
<password>{CH_PASSWORD}</password><networks><ip>127.0.0.1</ip></networks>
<profile>default</profile><quota>default</quota></{CH_USER}></users>
<quotas><default></default></quotas></yandex>""")
    binary = next(p for p in ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"]
                  if Path(p).exists())
    proc = subprocess.Popen([binary, f"--config-file={work}/config.xml"], cwd=work,
                            stdout=subprocess.DEVNULL, stderr=open(work / "ch.log", "w"))
    wait_port(port, proc, "clickhouse-server")
    return proc, port


def ch_query(port, sql):
    auth = base64.b64encode(f"{CH_USER}:{CH_PASSWORD}".encode()).decode()
    deadline = time.time() + 30
    while True:
        try:
            return http(f"http://127.0.0.1:{port}/", "POST", sql.encode(),
                        {"Authorization": f"Basic {auth}"})[1].decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def flumen_config(sink: str):
    def config(bootstrap, topic, group, _scenario, _out):
        return run.pipeline_config(bootstrap, topic, group, sink)
    return config


def s3_sink(s3_port, bucket, delivery, extra=""):
    return f"""
[[pipeline.sink]]
name = "s3"
component = "{run.GUESTS / 's3_sink.wasm'}"
config = {{ endpoint = "http://127.0.0.1:{s3_port}", bucket = "{bucket}"{extra} }}
http_allow = ["127.0.0.1:{s3_port}"]
env = {{ AWS_ACCESS_KEY_ID = "{ACCESS}", AWS_SECRET_ACCESS_KEY = "{SECRET}" }}
batch = {{ max_events = {BATCH}, max_bytes = 16777216, max_wait_ms = 1000 }}
{delivery}
"""


def ch_sink(port, table, delivery):
    return f"""
[[pipeline.sink]]
name = "clickhouse"
component = "{run.GUESTS / 'clickhouse_sink.wasm'}"
config = {{ url = "http://127.0.0.1:{port}", table = "{table}" }}
http_allow = ["127.0.0.1:{port}"]
env = {{ CLICKHOUSE_USER = "{CH_USER}", CLICKHOUSE_PASSWORD = "{CH_PASSWORD}" }}
batch = {{ max_events = {BATCH}, max_bytes = 16777216, max_wait_ms = 1000 }}
{delivery}
"""


# The Python consumers: read with consume(1000), gather BATCH events per
# partition (or whatever is there once a poll comes back empty), write them
# as one object or one insert, then commit that partition synchronously.
PY_COMMON = """
import json, time, resource, base64
from confluent_kafka import Consumer, TopicPartition
END = {end!r}
c = Consumer({{"bootstrap.servers": "{bootstrap}", "group.id": "{group}",
              "auto.offset.reset": "earliest", "enable.auto.commit": False,
              "session.timeout.ms": 6000}})
c.subscribe(["{topic}"])
buf = {{p: [] for p in END}}
done = {{}}
started = None
def row(m):
    k = m.key()
    return json.dumps({{"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
        "timestamp": m.timestamp()[1], "key": k.decode() if k else "",
        "value": m.value().decode()}}) + "\\n"
def flush(p):
    ms = buf[p]
    if not ms:
        return
    body = "".join(row(m) for m in ms).encode()
    write(p, ms, body)
    done[p] = ms[-1].offset() + 1
    c.commit(offsets=[TopicPartition("{topic}", p, done[p])], asynchronous=False)
    buf[p] = []
def main():
    global started
    while True:
        msgs = c.consume(1000, 0.05)
        for m in msgs:
            if m.error():
                continue
            if started is None:
                started = (time.time(), time.process_time())
            buf[m.partition()].append(m)
            if len(buf[m.partition()]) >= {batch}:
                flush(m.partition())
        if not msgs:
            for p in END:
                flush(p)
        if all(done.get(p, 0) >= e for p, e in END.items()):
            break
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"seconds": time.time() - started[0],
                      "cpu": time.process_time() - started[1], "rss_kib": rss}}))
"""

PY_S3 = """
import boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:{s3_port}", region_name="us-east-1",
                  aws_access_key_id="{access}", aws_secret_access_key="{secret}")
def write(p, ms, body):
    s3.put_object(Bucket="{bucket}", Key=f"{topic}/{{p}}/{{ms[0].offset():020d}}.jsonl", Body=body)
main()
c.close()
"""

PY_CH = """
import urllib.request, urllib.parse
AUTH = "Basic " + base64.b64encode(b"{user}:{password}").decode()
URL = "http://127.0.0.1:{port}/?query=" + urllib.parse.quote("INSERT INTO {table} FORMAT JSONEachRow")
def write(p, ms, body):
    req = urllib.request.Request(URL, data=body, method="POST", headers={{"Authorization": AUTH}})
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
main()
c.close()
"""


def measure(label, fn, reps, check):
    """slow_sink's measure, with each run's (result, count) checked."""
    def checked(rep):
        result, n = fn(rep)
        check(n)
        return result
    return slow_sink.measure(label, checked, reps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(OUT / "results.md"))
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tansu, bootstrap = run.start_tansu()
    work = Path(tempfile.mkdtemp(prefix="flumen-dest-"))
    (work / "weed").mkdir()
    (work / "ch").mkdir()
    weed, s3_port, filer = start_weed(work / "weed")
    ch, ch_port = start_clickhouse(work / "ch")
    results = {"s3": [], "clickhouse": []}
    n = [0]
    try:
        def fresh():
            n[0] += 1
            topic = f"dest-{os.getpid()}-{n[0]}"
            return topic, run.load(bootstrap, topic, args.events, SIZE, PARTITIONS)

        # One bucket for every run: keys start with the run's topic. (Each
        # bucket is a SeaweedFS collection with volumes of its own, and a
        # bucket per run ran the volume server out of volumes.)
        conn = http_client.HTTPConnection("127.0.0.1", filer, timeout=30)
        # A bare POST (urllib would add a form content type, which the
        # filer reads as an upload).
        conn.request("POST", "/buckets/bench/")
        if conn.getresponse().status not in (200, 201):
            raise SystemExit("creating the bucket failed")
        conn.close()

        def fresh_table():
            table = f"t{n[0]}"
            ch_query(ch_port, f"CREATE TABLE {table} (topic String, partition Int32, "
                     "offset Int64, timestamp Int64, key String, value String) "
                     "ENGINE = MergeTree ORDER BY (partition, offset)")
            return table

        def objects(topic):
            """Bytes stored under `bench/<topic>/<partition>/`."""
            listing = lambda path: json.loads(http(
                f"http://127.0.0.1:{filer}{path}/?limit=10000",
                headers={"Accept": "application/json"})[1]).get("Entries") or []
            return sum(e["FileSize"] for d in listing(f"/buckets/bench/{topic}")
                       for e in listing(d["FullPath"]))

        def check_bytes(total):
            if total < args.events * SIZE:
                raise SystemExit(f"the bucket holds {total} bytes, under the events' "
                                 f"{args.events * SIZE}")

        def check_rows(rows):
            if rows != args.events:
                raise SystemExit(f"the table holds {rows} rows, not {args.events}")

        def flumen_s3(delivery, extra=""):
            def one(rep):
                topic, end = fresh()
                run.flumen_config = flumen_config(s3_sink(s3_port, "bench", delivery, extra))
                with tempfile.TemporaryDirectory() as w:
                    r = run.run_flumen(bootstrap, topic, f"g-{topic}", "s3", end, Path(w))
                return r, objects(topic)
            return one

        def python_s3(rep):
            topic, end = fresh()
            code = (PY_COMMON + PY_S3).format(
                end=dict(end), bootstrap=bootstrap, group=f"py-{topic}", topic=topic,
                batch=BATCH, s3_port=s3_port, access=ACCESS, secret=SECRET, bucket="bench")
            return run.run_child([sys.executable, "-c", code]), objects(topic)

        def flumen_ch(delivery):
            def one(rep):
                topic, end = fresh()
                table = fresh_table()
                run.flumen_config = flumen_config(ch_sink(ch_port, table, delivery))
                with tempfile.TemporaryDirectory() as w:
                    r = run.run_flumen(bootstrap, topic, f"g-{topic}", "ch", end, Path(w))
                return r, int(ch_query(ch_port, f"SELECT count() FROM {table}"))
            return one

        def python_ch(rep):
            topic, end = fresh()
            table = fresh_table()
            code = (PY_COMMON + PY_CH).format(
                end=dict(end), bootstrap=bootstrap, group=f"py-{topic}", topic=topic,
                batch=BATCH, port=ch_port, user=CH_USER, password=CH_PASSWORD, table=table)
            r = run.run_child([sys.executable, "-c", code])
            return r, int(ch_query(ch_port, f"SELECT count() FROM {table}"))

        one = 'max_in_flight = 1'
        four = 'max_in_flight = 4\nordering = "unordered"'
        for label, fn, check, kind in [
            ("flumen s3 sink, max_in_flight = 1", flumen_s3(one), check_bytes, "s3"),
            ("flumen s3 sink, max_in_flight = 4 (unordered)", flumen_s3(four), check_bytes, "s3"),
            ("flumen s3 sink, max_in_flight = 4, sign_payload = false",
             flumen_s3(four, ", sign_payload = false"), check_bytes, "s3"),
            ("Python confluent-kafka + boto3 put_object", python_s3, check_bytes, "s3"),
            ("flumen clickhouse sink, max_in_flight = 1", flumen_ch(one), check_rows,
             "clickhouse"),
            ("flumen clickhouse sink, max_in_flight = 4 (unordered)", flumen_ch(four),
             check_rows, "clickhouse"),
            ("Python confluent-kafka + HTTP insert (urllib)", python_ch, check_rows,
             "clickhouse"),
        ]:
            print(label, file=sys.stderr)
            results[kind].append(measure(label, fn, args.reps, check))
    finally:
        for p in (tansu, weed, ch):
            p.kill()
    write(args, results)


def write(args, results):
    lines = [
        "# Real destinations: the s3 and clickhouse sinks beside Python",
        "",
        f"`scripts/bench.sh --destinations` on {time.strftime('%Y-%m-%d')}: {args.events} events "
        f"of {SIZE} bytes, {PARTITIONS} partitions, tansu; SeaweedFS 4.48 (`weed server -s3`, "
        "SigV4 checked) and clickhouse-server 18.16 on loopback, on the same 2 cores. Every "
        f"consumer writes {BATCH} events per partition as one JSON-lines object or one "
        "`INSERT … FORMAT JSONEachRow`, and commits after it. Medians of "
        f"{args.reps} runs, from the first event read to the last offset committed; "
        "(min–max) in brackets. Each run is checked: the bucket holds at least the events' "
        "bytes, the table exactly the events' rows.",
        "",
    ]
    for kind, rs in results.items():
        base = rs[-1]["median_s"]
        lines += [f"## {kind}", "",
                  "| consumer | events/s | × Python | seconds | CPU s | peak RSS MiB |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in rs:
            eps = args.events / r["median_s"]
            lo, hi = args.events / r["max_s"], args.events / r["min_s"]
            cpu = statistics.median(x["cpu"] for x in r["runs"])
            rss = max(x["rss_mib"] for x in r["runs"])
            lines.append(f"| {r['label']} | {eps:,.0f} ({lo:,.0f}–{hi:,.0f}) | "
                         f"{base / r['median_s']:.2f} | {r['median_s']:.2f} | {cpu:.2f} | "
                         f"{rss:.0f} |")
        lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
