#!/usr/bin/env python3
"""Slow destinations (issue 20): the HTTP sink against a loopback server that
answers every request after a delay (20 ms), 4 partitions, for
`max_in_flight` = 1, 4, 16 and 64 in each ordering mode; a Python
confluent-kafka + aiohttp consumer doing the same posts with the same
concurrency; and sink-side batching at a destination that takes 50 ms per
call. Writes bench/slow_sink/results.md.

Run it with `scripts/bench.sh --slow-sink` (it builds what it needs).
Options: --events N (default 100000), --reps R (default 3), --batch B (the
pipeline's batch, default 100 events), --delay-ms D (default 20).
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the shared broker, load and flumen runner)

ROOT = run.ROOT
OUT = ROOT / "bench/slow_sink"
PARTITIONS = 4
SIZE = 100


class SlowServer:
    """An HTTP/1.1 server on loopback (asyncio, keep-alive) that answers each
    request after `delay` seconds; counts requests and JSON lines."""

    def __init__(self, delay: float):
        self.delay = delay
        self.requests = 0
        self.lines = 0
        self.port = run.free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        threading.Thread(target=self._serve, args=(started,), daemon=True).start()
        started.wait()

    def _serve(self, started):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port, backlog=1024,
                                 limit=1 << 20))
        started.set()
        self.loop.run_until_complete(server.serve_forever())

    async def _client(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, chunked = 0, False
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"transfer-encoding":
                        chunked = b"chunked" in value.lower()
                if chunked:
                    # The HTTP sink streams its body (wasi:http): chunked.
                    parts = []
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        if size == 0:
                            await reader.readuntil(b"\r\n")
                            break
                        parts.append(await reader.readexactly(size))
                        await reader.readexactly(2)
                    body = b"".join(parts)
                else:
                    body = await reader.readexactly(length) if length else b""
                await asyncio.sleep(self.delay)
                self.requests += 1
                self.lines += body.count(b"\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def flumen_config(server: SlowServer, batch: int, delivery: str):
    def config(bootstrap, topic, group, _scenario, _out):
        return run.pipeline_config(bootstrap, topic, group, f"""
[[pipeline.sink]]
name = "http"
component = "{run.GUESTS / 'http_sink.wasm'}"
config = {{ url = "http://127.0.0.1:{server.port}/ingest" }}
http_allow = ["127.0.0.1:{server.port}"]
{delivery}
""", pipeline=f"batch = {{ max_events = {batch}, max_wait_ms = 20 }}")
    return config


def python_consumer(bootstrap, topic, group, end, url, concurrency, batch) -> dict:
    """confluent-kafka + aiohttp: reads batches, posts each as JSON lines with
    up to `concurrency` requests at once per partition, commits a partition's
    offset once every post before it has answered."""
    code = f"""
import asyncio, json, time, resource, aiohttp
from confluent_kafka import Consumer, TopicPartition
END = {dict(end)!r}
c = Consumer({{"bootstrap.servers": "{bootstrap}", "group.id": "{group}",
              "auto.offset.reset": "earliest", "enable.auto.commit": False}})
c.subscribe(["{topic}"])
async def main():
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        sems = {{p: asyncio.Semaphore({concurrency}) for p in END}}
        pending = {{p: [] for p in END}}   # (last offset, task) in order
        done_to = {{}}
        started = None
        async def post(p, body):
            async with sems[p]:
                async with http.post("{url}", data=body) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(r.status)
        while True:
            msgs = await asyncio.to_thread(c.consume, {batch * PARTITIONS}, 0.05)
            by_p = {{}}
            for m in msgs:
                if m.error():
                    continue
                if started is None:
                    started = time.time(); cpu0 = time.process_time()
                by_p.setdefault(m.partition(), []).append(m)
            for p, ms in by_p.items():
                body = "".join(json.dumps({{"topic": m.topic(), "partition": p, "offset": m.offset(),
                    "value": m.value().decode()}}) + "\\n" for m in ms).encode()
                await sems[p].acquire(); sems[p].release()
                pending[p].append((ms[-1].offset(), asyncio.create_task(post(p, body))))
            await asyncio.sleep(0)
            commits = []
            for p, q in pending.items():
                while q and q[0][1].done():
                    q[0][1].result()
                    done_to[p] = q.pop(0)[0] + 1
                    commits.append(TopicPartition("{topic}", p, done_to[p]))
            if commits:
                c.commit(offsets=commits, asynchronous=False)
            if all(done_to.get(p, 0) >= e for p, e in END.items()):
                break
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"seconds": time.time() - started, "cpu": time.process_time() - cpu0,
                          "rss_kib": rss}}))
asyncio.run(main())
c.close()
"""
    return run.run_child([sys.executable, "-c", code])


def measure(label, fn, reps):
    runs = [fn(r) for r in range(reps)]
    secs = [x["seconds"] for x in runs]
    return {"label": label, "runs": runs, "median_s": statistics.median(secs),
            "min_s": min(secs), "max_s": max(secs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--delay-ms", type=int, default=20)
    ap.add_argument("--windows", default="1,4,16,64")
    ap.add_argument("--skip-python", action="store_true")
    ap.add_argument("--orderings", default="partition,key,unordered,adaptive")
    ap.add_argument("--skip-batching", action="store_true")
    ap.add_argument("--out", default=str(OUT / "results.md"))
    ap.add_argument("--keys", type=int, default=1000,
                    help="distinct keys of the events (spread over the partitions)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tansu, bootstrap = run.start_tansu()
    results = []
    try:
        topic_n = [0]

        def fresh_topic(events):
            topic_n[0] += 1
            topic = f"slow-{os.getpid()}-{topic_n[0]}"
            end = run.load(bootstrap, topic, events, SIZE, PARTITIONS, args.keys)
            return topic, end

        def flumen(server, delivery, events, batch):
            def one(rep):
                topic, end = fresh_topic(events)
                run.flumen_config = flumen_config(server, batch, delivery)
                with tempfile.TemporaryDirectory() as work:
                    return run.run_flumen(bootstrap, topic, f"g-{topic}", "http", end, Path(work))
            return one

        server = SlowServer(args.delay_ms / 1000)
        windows = [int(w) for w in args.windows.split(",")]
        orderings = args.orderings.split(",")
        for ordering in [o for o in ["partition", "key", "unordered"] if o in orderings]:
            for w in windows:
                if ordering == "partition" and w > 1:
                    continue
                delivery = f'max_in_flight = {w}\nordering = "{ordering}"'
                label = f"flumen, ordering = {ordering}, max_in_flight = {w}"
                print(label, file=sys.stderr)
                results.append(measure(label, flumen(server, delivery, args.events, args.batch),
                                       args.reps) | {"ordering": ordering, "window": w})
        if "adaptive" in orderings:
            w = max(windows)
            label = f"flumen, ordering = unordered, adaptive_concurrency, max_in_flight = {w}"
            print(label, file=sys.stderr)
            delivery = f'max_in_flight = {w}\nordering = "unordered"\nadaptive_concurrency = true'
            results.append(measure(label, flumen(server, delivery, args.events, args.batch),
                                   args.reps) | {"ordering": "adaptive", "window": w})
        if not args.skip_python:
            for w in windows:
                label = f"Python confluent-kafka + aiohttp, {w} posts in flight per partition"
                print(label, file=sys.stderr)

                def py(rep, w=w):
                    topic, end = fresh_topic(args.events)
                    return python_consumer(bootstrap, topic, f"py-{topic}", end,
                                           f"http://127.0.0.1:{server.port}/ingest", w, args.batch)
                results.append(measure(label, py, args.reps) | {"ordering": "python", "window": w})
        # Sink-side batching: a destination that takes 50 ms per call.
        slow = SlowServer(0.05)
        batched = []
        for label, delivery in [] if args.skip_batching else [
            ("pipeline batches of 100, one call each", ""),
            ("sink-side batching, batch.max_events = 5000",
             "batch = { max_events = 5000, max_wait_ms = 1000 }"),
        ]:
            before = slow.requests
            print(label, file=sys.stderr)
            m = measure(label, flumen(slow, delivery, args.events, 100), args.reps)
            m["calls_per_run"] = (slow.requests - before) / args.reps
            m["events"] = args.events
            batched.append(m)
    finally:
        tansu.kill()
    write(args, results, batched)


def write(args, results, batched):
    base = next(r for r in results if r["window"] == 1)["median_s"]
    lines = [
        "# Slow destinations: calls in flight per partition",
        "",
        f"`scripts/bench.sh --slow-sink` on {time.strftime('%Y-%m-%d')}: {args.events} events of "
        f"{SIZE} bytes with {args.keys} distinct keys, {PARTITIONS} partitions, tansu, the HTTP sink posting JSON lines to a "
        f"loopback server that answers each request after {args.delay_ms} ms; pipeline batches "
        f"of {args.batch} events. Medians of {args.reps} runs, from the first event read to the "
        "last offset committed; (min–max) in brackets.",
        "",
        "| consumer | events/s | × max_in_flight = 1 | seconds | CPU s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        eps = args.events / r["median_s"]
        lo, hi = args.events / r["max_s"], args.events / r["min_s"]
        cpu = statistics.median(x["cpu"] for x in r["runs"])
        rss = max(x["rss_mib"] for x in r["runs"])
        lines.append(f"| {r['label']} | {eps:,.0f} ({lo:,.0f}–{hi:,.0f}) | "
                     f"{base / r['median_s']:.1f} | {r['median_s']:.2f} | {cpu:.2f} | {rss:.0f} |")
    lines += ["", "## Sink-side batching at a destination taking 50 ms per call", "",
              "| setting | events/s | calls per run | seconds |", "|---|---:|---:|---:|"]
    for m in batched:
        lines.append(f"| {m['label']} | {m['events'] / m['median_s']:,.0f} | "
                     f"{m['calls_per_run']:.0f} | {m['median_s']:.2f} "
                     f"({m['min_s']:.2f}–{m['max_s']:.2f}) |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
