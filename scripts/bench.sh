#!/usr/bin/env bash
# The throughput benchmark, in one command (not part of the tests):
#   scripts/bench.sh [bench/run.py options, e.g. --events 200000 --reps 1]
# Builds the release host and the raw-librdkafka baseline, the guests and
# tansu, sets up a Python venv with confluent-kafka and matplotlib, then
# runs bench/run.py, which writes bench/results.md and bench/throughput.png.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-guest-toolchain.sh rust
scripts/fetch-tansu.sh
guests/build.sh rust >/dev/null
cargo build --release --locked -p flumen --bin flumen --example raw_consumer
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet confluent-kafka==2.16.1 matplotlib==3.11.2
fi
exec "$venv/bin/python" bench/run.py "$@"
