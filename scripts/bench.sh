#!/usr/bin/env bash
# The throughput benchmark, in one command (not part of the tests):
#   scripts/bench.sh [bench/run.py options, e.g. --events 200000 --reps 1]
# Builds the release host and the raw-librdkafka baseline, the guests and
# tansu, sets up a Python venv with confluent-kafka and matplotlib, then
# runs bench/run.py, which writes bench/results.md and bench/throughput.png.
#   scripts/bench.sh --languages [options]
# compares the same guests written in Rust, Python, JavaScript and C
# (bench/languages/): installs and builds those toolchains too.
#   scripts/bench.sh --slow-sink [bench/slow_sink.py options]
# measures calls in flight against a slow HTTP destination, beside a Python
# confluent-kafka + aiohttp consumer (bench/slow_sink/).
#   scripts/bench.sh --schemas [bench/schemas.py options]
# measures decoding Avro with schema_decode beside flumen raw and a Python
# confluent-kafka consumer with AvroDeserializer (bench/schemas/).
#   scripts/bench.sh --destinations [bench/destinations.py options]
# measures the s3 and clickhouse sinks against SeaweedFS and ClickHouse,
# beside Python consumers using boto3 and plain HTTP (bench/destinations/).
set -euo pipefail
cd "$(dirname "$0")/.."
langs=(rust)
args=("$@")
script=bench/run.py
if [ "${1:-}" = "--slow-sink" ]; then
  script=bench/slow_sink.py
  args=("${@:2}")
fi
if [ "${1:-}" = "--schemas" ]; then
  script=bench/schemas.py
  args=("${@:2}")
fi
if [ "${1:-}" = "--destinations" ]; then
  script=bench/destinations.py
  args=("${@:2}")
  scripts/fetch-services.sh
fi
if [ "${1:-}" = "--languages" ]; then
  langs=(rust python js c)
  args=(--sizes 1000 --events 500000 --scenarios 1,3r,3py,3js,3c,5,5py,5js,5c
        --out bench/languages "${@:2}")
fi
scripts/install-guest-toolchain.sh "${langs[@]}"
scripts/fetch-tansu.sh
guests/build.sh "${langs[@]}" >/dev/null
cargo build --release --locked -p flumen --bin flumen --example raw_consumer
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet confluent-kafka==2.16.1 matplotlib==3.11.2
fi
if [ "$script" = bench/slow_sink.py ] && ! "$venv/bin/python" -c "import aiohttp" 2>/dev/null; then
  "$venv/bin/pip" install --quiet aiohttp==3.14.5
fi
if [ "$script" = bench/schemas.py ] && ! "$venv/bin/python" -c "import fastavro" 2>/dev/null; then
  "$venv/bin/pip" install --quiet -r tests/schemas/requirements.txt
fi
if [ "$script" = bench/destinations.py ] && ! "$venv/bin/python" -c "import boto3" 2>/dev/null; then
  "$venv/bin/pip" install --quiet boto3==1.44.18
fi
exec "$venv/bin/python" "$script" "${args[@]+"${args[@]}"}"
