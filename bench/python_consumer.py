"""What a user would write instead of flumen: a confluent-kafka consumer that
drops events matching a regex (like the filter interceptor) and appends the
rest to a file as JSON lines (like the file sink), committing at the end.

Usage: python_consumer.py BOOTSTRAP TOPIC GROUP EXPECTED_EVENTS PATTERN OUT_FILE
Prints one JSON line: events, bytes, seconds and CPU seconds from the first
event to the final commit, and peak RSS.
"""

import json
import re
import resource
import sys
import time

from confluent_kafka import Consumer


def cpu_now() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    bootstrap, topic, group, expected, pattern, out_path = sys.argv[1:7]
    expected = int(expected)
    regex = re.compile(pattern.encode())
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([topic])
    events = 0
    size = 0
    first = None
    with open(out_path, "w", encoding="utf-8") as out:
        while events < expected:
            # Batches, as a careful user would; one poll per message is slower.
            for m in consumer.consume(num_messages=500, timeout=0.1):
                if m.error():
                    print(f"consumer error: {m.error()}", file=sys.stderr)
                    continue
                if first is None:
                    first = time.monotonic()
                    cpu_first = cpu_now()
                value = m.value() or b""
                events += 1
                size += len(value)
                if regex.search(value):
                    continue
                line = {
                    "topic": m.topic(),
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "timestamp": m.timestamp()[1],
                    "key": (m.key() or b"").decode("utf-8", "replace"),
                    "value": value.decode("utf-8", "replace"),
                    "headers": [],
                }
                out.write(json.dumps(line))
                out.write("\n")
        out.flush()
    consumer.commit(asynchronous=False)
    seconds = time.monotonic() - first if first is not None else 0.0
    cpu = cpu_now() - cpu_first if first is not None else 0.0
    consumer.close()
    # Read here: the parent's wait4 would report the forking parent's
    # high-water mark when that is higher.
    with open("/proc/self/status", encoding="ascii") as f:
        rss_kib = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    print(json.dumps({"events": events, "bytes": size, "seconds": seconds, "cpu": cpu,
                      "rss_kib": rss_kib}))


if __name__ == "__main__":
    main()
