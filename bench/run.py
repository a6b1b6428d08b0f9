"""flumen's throughput benchmark, all scenarios in one run against one broker.

Starts tansu (memory storage) on loopback, loads each event size into its own
4-partition topic once, then reads the same data in every scenario (a fresh
consumer group each time):

  1. raw librdkafka: a Rust consumer loop that only touches each payload
  1c. the same, committing (asynchronously) every COMMIT_EVERY events, as
     often as (2c) commits: what frequent commits cost without flumen
  2. flumen, Rust null sink
  2c. flumen, null sink, committing after every batch instead of every 100 ms
  3. flumen, filter interceptor + null sink
  4. flumen, two null sinks (fan-out)
  5. flumen, filter interceptor + file sink
  6. Python confluent-kafka: the same filter + file write as (5)

Each is timed from the first event to the last commit (the group join is
excluded) and repeated; the table gives the median and the spread, the ratio
to (1), CPU seconds of the consumer and of the broker, and peak RSS.

Writes bench/results.md and bench/throughput.png. Run it through
scripts/bench.sh, which builds everything first.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
# FLUMEN_BIN: another build of flumen, to compare two builds on one broker.
# FLUMEN_BENCH_PIPELINE: extra [[pipeline]] keys (one per line), to compare
# settings on one broker, e.g. "max_queued_bytes = 4194304".
FLUMEN = Path(os.environ.get("FLUMEN_BIN", ROOT / "target/release/flumen"))
RAW = ROOT / "target/release/examples/raw_consumer"
GUESTS = ROOT / "guests/target/wasm32-wasip2/release"
TANSU = Path(os.environ.get("FLUMEN_TANSU", ROOT / ".tools/tansu/tansu"))
# One event in ten matches the filter, which drops it.
PATTERN = "level=debug"
TICK = os.sysconf("SC_CLK_TCK")

SCENARIOS = [
    ("1", "raw librdkafka (Rust loop, touches each payload)"),
    ("1c", "raw librdkafka, async commit every 1500 events"),
    ("2", "flumen: null sink"),
    ("2c", "flumen: null sink, commit after every batch"),
    ("3", "flumen: filter + null sink"),
    ("4", "flumen: two null sinks (fan-out)"),
    ("5", "flumen: filter + file sink"),
    ("6", "Python confluent-kafka: filter + file write"),
    # The same guests in other languages (scripts/bench.sh --languages).
    ("3r", "flumen: header filter in Rust + null sink"),
    ("3py", "flumen: header filter in Python + null sink"),
    ("3js", "flumen: header filter in JavaScript + null sink"),
    ("3c", "flumen: header filter in C + null sink"),
    ("5py", "flumen: filter + file sink in Python"),
    ("5js", "flumen: filter + file sink in JavaScript"),
    ("5c", "flumen: filter + file sink in C"),
]
DEFAULT_SCENARIOS = "1,2,2c,3,4,5,6"
# (2c) commits about 680 times per million events of 1000 bytes (counted in
# its debug log: once per batch, coalesced over the partitions by the
# committer), so (1c) commits about as often.
RAW_COMMIT_EVERY = 1500
LANG_GUESTS = ROOT / "guests/target"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_tansu() -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(TANSU), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                raise SystemExit("tansu did not start")
            time.sleep(0.05)
    return proc, f"127.0.0.1:{port}"


def load(bootstrap: str, topic: str, events: int, size: int, partitions: int,
         keys: int = 0) -> dict[int, int]:
    """Produces `events` values of `size` bytes round-robin over
    `partitions` partitions, keyed `k0` … `k{keys-1}` if `keys`; returns the
    end offset of each partition."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "batch.size": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
                         "compression.type": "none", "acks": "all"})
    filler = ("x" * size).encode()
    counts = {p: 0 for p in range(partitions)}
    for i in range(events):
        head = f"level={'debug' if i % 10 == 0 else 'info'} id={i} ".encode()
        value = (head + filler)[:size] if size > len(head) else head[:size]
        p = i % partitions
        while True:
            try:
                key = f"k{i % keys}".encode() if keys else None
                producer.produce(topic, key=key, value=value, partition=p)
                break
            except BufferError:
                producer.poll(0.05)
        counts[p] += 1
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("producer did not finish")
    return counts


def flumen_config(bootstrap: str, topic: str, group: str, scenario: str, out: Path) -> str:
    null = GUESTS / "null_sink.wasm"
    filt = f"""
[[pipeline.interceptor]]
name = "filter"
component = "{GUESTS / 'filter.wasm'}"
config = {{ pattern = "{PATTERN}" }}
"""
    sink = lambda name, wasm=null, extra="": f"""
[[pipeline.sink]]
name = "{name}"
component = "{wasm}"
{extra}
"""
    file_sink = lambda wasm: sink("file", wasm,
                                  f'config = {{ path = "/out/out-%{{partition}}.jsonl", sync = false }}\n'
                                  f'dirs = [{{ host = "{out}", guest = "/out" }}]')
    # Drops events whose `level` header is `debug`: the same work in each
    # language (the Rust one is the filter on the header).
    header_filter = lambda wasm, config: f"""
[[pipeline.interceptor]]
name = "headers"
component = "{wasm}"
config = {config}
"""
    drop_header = lambda lang: header_filter(LANG_GUESTS / lang / "drop_header.wasm",
                                             '{ header = "level", value = "debug" }')
    components = {
        "2": sink("null"),
        "2c": sink("null"),
        "3": filt + sink("null"),
        "4": sink("a") + sink("b"),
        "5": filt + file_sink(GUESTS / "file_sink.wasm"),
        "3r": header_filter(GUESTS / "filter.wasm",
                            '{ pattern = "^debug$", field = "header:level" }') + sink("null"),
        "3py": drop_header("python") + sink("null"),
        "3js": drop_header("js") + sink("null"),
        "3c": drop_header("c") + sink("null"),
        "5py": filt + file_sink(LANG_GUESTS / "python/file_sink.wasm"),
        "5js": filt + file_sink(LANG_GUESTS / "js/file_sink.wasm"),
        "5c": filt + file_sink(LANG_GUESTS / "c/file_sink.wasm"),
    }[scenario]
    interval = 1 if scenario == "2c" else int(os.environ.get("FLUMEN_BENCH_COMMIT_MS", "100"))
    return pipeline_config(bootstrap, topic, group, components, interval)


def pipeline_config(bootstrap: str, topic: str, group: str, components: str,
                    commit_ms: int = 100, pipeline: str = "") -> str:
    """A config with one pipeline named `bench` reading `topic`: the
    `[kafka]` section every benchmark uses, then `pipeline` keys (and
    FLUMEN_BENCH_PIPELINE's) and the `components` tables."""
    return f"""
[kafka]
bootstrap_servers = "{bootstrap}"
options = {{ "session.timeout.ms" = 6000{os.environ.get("FLUMEN_BENCH_OPTIONS", "")} }}
[reload]
watch = false
[[pipeline]]
name = "bench"
topics = ["{topic}"]
group_id = "{group}"
commit = {{ interval_ms = {commit_ms} }}
{pipeline}
{os.environ.get("FLUMEN_BENCH_PIPELINE", "")}
{components}
"""


STAMP = re.compile(r"^(\S+Z)\s")


def stamp(line: str) -> float:
    m = STAMP.match(line)
    return datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()


def run_flumen(bootstrap, topic, group, scenario, end, workdir, config=None) -> dict:
    """Runs flumen on `scenario`'s config (or the `config` text given) until
    it committed `end`; its time and CPU from the first event read, and its
    peak RSS."""
    out = workdir / "out"
    out.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "flumen.toml"
    cfg.write_text(config or flumen_config(bootstrap, topic, group, scenario, out))
    log = workdir / "flumen.log"
    env = dict(os.environ, RUST_LOG=os.environ.get("FLUMEN_BENCH_RUST_LOG", "info,flumen::kafka=debug"))
    with open(log, "w") as logf:
        proc = subprocess.Popen([str(FLUMEN), "run", "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=logf, env=env)
    want = {p: o for p, o in end.items()}
    started = done = None
    committed = {}
    deadline = time.time() + 600
    pos = 0
    while done is None:
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"flumen scenario {scenario} did not finish; see {log}")
        time.sleep(0.05)
        with open(log) as f:
            f.seek(pos)
            chunk = f.read()
        # Only whole lines.
        cut = chunk.rfind("\n") + 1
        pos += len(chunk[:cut].encode())
        for line in chunk[:cut].splitlines():
            if started is None and "first event of the partition read" in line:
                # Measured from the first event, as raw (1) is: compiling
                # the guests and joining the group are behind us.
                started = stamp(line)
                cpu_started = cpu_seconds(proc.pid)
            if "committing offsets=" in line:
                for p, o in re.findall(r'\("[^"]*", (\d+), (\d+)\)', line):
                    committed[int(p)] = int(o)
                if all(committed.get(p) == o for p, o in want.items()):
                    done = stamp(line)
    status = Path(f"/proc/{proc.pid}/status").read_text()
    rss_kib = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    cpu = cpu_seconds(proc.pid) - cpu_started
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    if os.environ.get("FLUMEN_BENCH_KEEP_LOG"):
        shutil.copy(log, Path(os.environ["FLUMEN_BENCH_KEEP_LOG"]) / f"flumen-{group}.log")
    return {"seconds": done - started, "cpu": cpu, "rss_mib": rss_kib / 1024}


def run_child(cmd) -> dict:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, _ = os.wait4(proc.pid, 0)
    result = json.loads(proc.stdout.read().strip().splitlines()[-1])
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed")
    # RSS from the child itself: after fork, ru_maxrss starts at this
    # (larger) process's high-water mark.
    return {"seconds": result["seconds"], "cpu": result["cpu"],
            "rss_mib": result["rss_kib"] / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000,
                    help="events of 1000 bytes (100 B: five times as many; 10 KB: a fifth)")
    ap.add_argument("--sizes", default="1000,100,10000")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scenarios", default=DEFAULT_SCENARIOS)
    ap.add_argument("--partitions", type=int, default=4,
                    help="partitions of each topic: 1 is a single hot partition, 16 many")
    ap.add_argument("--out", default=str(ROOT / "bench"))
    args = ap.parse_args()
    wanted = args.scenarios.split(",")
    tansu, bootstrap = start_tansu()
    results = {}  # (size, scenario) -> list of runs
    meta = {}
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            # About two seconds or more of raw consuming at every size: in
            # shorter runs the up to 100 ms between flumen's last batch and
            # its last commit (the commit interval) was a tenth of a run of
            # 100-byte events, and 10 KB ratios moved by 20 points.
            events = {100: args.events * 5, 1000: args.events}.get(size, max(args.events // 5, 1))
            topic = f"bench-{size}-p{args.partitions}"
            print(f"loading {events} events of {size} bytes into {args.partitions} partitions …",
                  flush=True)
            end = load(bootstrap, topic, events, size, args.partitions)
            meta[size] = events
            for rep in range(args.reps):
                for scenario, _ in SCENARIOS:
                    if scenario not in wanted:
                        continue
                    group = f"bench-{size}-{scenario}-{rep}"
                    broker_before = cpu_seconds(tansu.pid)
                    with tempfile.TemporaryDirectory() as tmp:
                        tmp = Path(tmp)
                        if scenario == "1":
                            r = run_child([str(RAW), bootstrap, topic, group, str(events)])
                        elif scenario == "1c":
                            r = run_child([str(RAW), bootstrap, topic, group, str(events),
                                           str(RAW_COMMIT_EVERY)])
                        elif scenario == "6":
                            r = run_child([sys.executable, str(ROOT / "bench/python_consumer.py"),
                                           bootstrap, topic, group, str(events), PATTERN,
                                           str(tmp / "out.jsonl")])
                        else:
                            r = run_flumen(bootstrap, topic, group, scenario, end, tmp)
                    r["broker_cpu"] = cpu_seconds(tansu.pid) - broker_before
                    r["events_per_s"] = events / r["seconds"]
                    r["mb_per_s"] = events * size / r["seconds"] / 1e6
                    results.setdefault((size, scenario), []).append(r)
                    print(f"  {size} B rep {rep + 1} ({scenario}): {r['events_per_s']:,.0f} ev/s, "
                          f"{r['mb_per_s']:.1f} MB/s, cpu {r['cpu']:.1f} s, "
                          f"rss {r['rss_mib']:.0f} MiB", flush=True)
    finally:
        tansu.kill()
    write_report(Path(args.out), results, meta, args)


def spread(runs, key: str) -> tuple[float, float, float]:
    """Median, min and max of one measure over a scenario's runs."""
    values = [r[key] for r in runs]
    return statistics.median(values), min(values), max(values)


def paired_ratio(runs, raw) -> str:
    """Median and spread of the per-repetition ratio to (1).

    Each repetition runs every scenario back to back, so dividing within a
    repetition cancels what the shared machine was doing at the time; the
    absolute rates here drift by ±15 % between repetitions."""
    if not raw:
        return "—"
    ratios = [r["events_per_s"] / b["events_per_s"] for r, b in zip(runs, raw)]
    med = statistics.median(ratios)
    if len(ratios) == 1:
        return f"{med:.0%}"
    return f"{med:.0%} ({min(ratios):.0%}–{max(ratios):.0%})"


def kept_intro(report: Path) -> list[str]:
    """The title and hand-written prose above the `Command:` line of an
    earlier report, so a rerun refreshes the figures and keeps what
    explains them; a plain title for a new report."""
    if report.exists():
        text = report.read_text().split("\n")
        for i, line in enumerate(text):
            if line.startswith("Command:"):
                return text[:i]
    return ["# flumen throughput", ""]


def against_rust_sink(results, size) -> list[str]:
    """For the language scenarios: each file sink's throughput against the
    Rust one (5), paired per repetition like the ratios to (1)."""
    rust = results.get((size, "5"))
    others = [(sc, label) for sc, label in SCENARIOS
              if sc in ("5py", "5js", "5c") and results.get((size, sc))]
    if not rust or not others:
        return []
    lines = ["Against the Rust file sink (5), median of the per-repetition ratios (min–max):", ""]
    for scenario, label in others:
        lines.append(f"- ({scenario}) {label}: {paired_ratio(results[(size, scenario)], rust)}")
    return lines + [""]


def write_report(out: Path, results, meta, args) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = kept_intro(out / "results.md") + [
        f"Command: `scripts/bench.sh` (`bench/run.py --events {args.events} --reps {args.reps} --partitions {args.partitions}`), "
        f"{datetime.now().strftime('%Y-%m-%d')}, tansu 0.6 (memory storage) on loopback, "
        f"{args.partitions} partition(s), {os.cpu_count()} cores. Median of {args.reps} runs, spread = min–max; "
        "ratio to (1) = median of the per-repetition ratios (each repetition runs the scenarios "
        "back to back; min–max in brackets). Time and CPU = from the consumer's first event "
        "(group join and guest compilation excluded) to its last commit; CPU = user + system "
        "seconds of the consumer process; broker = tansu's CPU seconds during the run.",
        "",
    ]
    for size, events in meta.items():
        lines += [f"## {events:,} events of {size} bytes", "",
                  "| scenario | events/s (median) | spread | MB/s | ratio to (1) | CPU s | broker CPU s | peak RSS MiB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        raw = results.get((size, "1"))
        for scenario, label in SCENARIOS:
            runs = results.get((size, scenario))
            if not runs:
                continue
            med, low, high = spread(runs, "events_per_s")
            ratio = paired_ratio(runs, raw)
            lines.append(
                f"| ({scenario}) {label} | {med:,.0f} | {low:,.0f}–{high:,.0f} | "
                f"{statistics.median(r['mb_per_s'] for r in runs):.1f} | {ratio} | "
                f"{statistics.median(r['cpu'] for r in runs):.1f} | "
                f"{statistics.median(r['broker_cpu'] for r in runs):.1f} | "
                f"{max(r['rss_mib'] for r in runs):.0f} |")
        lines.append("")
        lines += against_rust_sink(results, size)
    (out / "results.md").write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps(
        {f"{s}/{sc}": runs for (s, sc), runs in results.items()}, indent=1))
    try:
        plot(out / "throughput.png", results, meta)
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
    print((out / "results.md").read_text())


def plot(path: Path, results, meta) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = list(meta)
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4.5), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        names, meds, lo, hi = [], [], [], []
        for scenario, _ in SCENARIOS:
            runs = results.get((size, scenario))
            if not runs:
                continue
            m, low, high = spread(runs, "mb_per_s")
            names.append(f"({scenario})")
            meds.append(m)
            lo.append(m - low)
            hi.append(high - m)
        colors = {"(1)": "#555", "(6)": "#c63"}
        ax.bar(names, meds, yerr=[lo, hi], capsize=3,
               color=[colors.get(n, "#2a7") for n in names])
        ax.set_title(f"{meta[size]:,} × {size} B")
        ax.set_ylabel("MB/s (median, min–max)")
    fig.suptitle("flumen vs raw librdkafka (1) and Python confluent-kafka (6)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
