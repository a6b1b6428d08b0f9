#!/usr/bin/env bash
# Quick start, command 2 (and what CI runs): installs what the tests need,
# builds the guests, checks formatting and lints, and runs every test —
# unit tests, and end-to-end tests against the embedded mock broker and a
# real tansu broker process.
set -euo pipefail
cd "$(dirname "$0")/.."
# Wall time per phase, and how busy the cores were meanwhile (the CPU
# time of the commands it ran, over wall time × cores), printed at the end
# (on failure too), so that a slow run shows where its time went and which
# phases leave the machine idle.
timings=()
cores=$(nproc)
tick=$(getconf CLK_TCK)
# CPU time, in clock ticks, of the commands this script has run and waited
# for (cutime + cstime in /proc/PID/stat).
cpu() { awk '{print $16 + $17}' "/proc/$$/stat"; }
current="" mark=$SECONDS cpu_mark=$(cpu)
phase() {
  local now wall busy
  now=$(cpu) wall=$((SECONDS - mark))
  busy=$(( wall > 0 ? 100 * (now - cpu_mark) / (tick * wall * cores) : 0 ))
  [ -z "$current" ] || timings+=("$(printf '%6ds %4d%%  %s' "$wall" "$busy" "$current")")
  current="$1" mark=$SECONDS cpu_mark=$now
}
report() {
  phase ""
  printf '\n== wall time per phase (and CPU busy, of %d cores) ==\n' "$cores"
  printf '%s\n' "${timings[@]}"
  printf '%6ds        total\n' "$SECONDS"
}
trap report EXIT
phase "install services and toolchains"
scripts/install-host-deps.sh --test
scripts/install-guest-toolchain.sh
scripts/fetch-tansu.sh >/dev/null
# SeaweedFS (an S3 API) and clickhouse-server, for the s3 and clickhouse
# sinks' end-to-end tests.
scripts/fetch-services.sh
# tests/e2e/deploy.rs checks deploy/flumen.service with systemd-analyze;
# the fault suite's network scenarios make namespaces with iproute2's ip.
if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq systemd iproute2 >/dev/null
fi
# Confluent's serializers and deserializers (and the test Schema Registry's
# Python), pinned, for tests/e2e/schemas/.
if ! cmp -s tests/schemas/requirements.txt target/test-venv/requirements.txt; then
  rm -rf target/test-venv
  python3 -m venv target/test-venv
  target/test-venv/bin/pip install --quiet --disable-pip-version-check -r tests/schemas/requirements.txt
  cp tests/schemas/requirements.txt target/test-venv/requirements.txt
fi
phase "build the guests"
guests/build.sh
# The guest helpers (reading a batch's columns event by event; for Rust
# also rendering JSON lines) have unit tests of their own, run natively, as
# do the s3 sink (SigV4 against AWS's examples, keys, compression) and the
# clickhouse sink (reading the server's answers), and schema_codec (the
# framings; Avro and Protobuf to and from JSON).
phase "guest unit tests (Rust, Python, JavaScript helpers)"
(cd guests && cargo test --locked -q -p flumen-guest-common -p s3_sink -p clickhouse_sink -p schema_codec -p schema_encode)
python3 -m unittest discover -s guests/helpers/python
node --test guests/helpers/js/
phase "fmt"
cargo fmt --all --check
# One build serves the lints and the tests. clippy-driver compiles the
# workspace's crates (every target, as `cargo clippy --all-targets` would
# lint them, warnings as errors) where rustc would, so the dependencies are
# compiled once, for the tests, and not a second time in check mode for
# `cargo clippy`: that check build was 12 of a 31-minute run. Every cargo
# command below keeps the wrapper, or it would rebuild the crate without it.
export RUSTC_WORKSPACE_WRAPPER="$PWD/scripts/clippy-rustc"
# A clean build gains nothing from incremental compilation's bookkeeping.
export CARGO_INCREMENTAL=0
phase "build the tests, linted by clippy"
cargo test --locked --all-targets --no-run
# Every test target but the fault suite, which runs below: the [[test]]
# targets of host/Cargo.toml are read from it, so that a new one is run.
targets=(--lib --bins --examples --benches)
for t in $(awk '/^\[\[test\]\]/ { t = 1; next } t && /^name/ { gsub(/"/, "", $3); print $3; t = 0 }' host/Cargo.toml); do
  [ "$t" = fault_suite ] || targets+=(--test "$t")
done
# Four test threads: the end-to-end tests mostly wait on brokers, stores,
# session timeouts and the faults they inject, so four keep both cores
# busy (the e2e binary: 424 s with two threads, 250-278 s with four).
# libtest reads RUST_TEST_THREADS; criterion's bench harness (run once here
# as a smoke test) would refuse a --test-threads argument.
phase "run the tests (all but the fault suite)"
RUST_TEST_THREADS=4 cargo test --locked "${targets[@]}"
# The fault suite's main run, and the suite again with several calls in
# flight per partition (max_in_flight = 8), in key order and in none: every
# scenario whose sink can take them, at a size that fits CI (6 kills rather
# than 20: each costs a restart and a group join, whatever the events). Key
# order also meets the network faults (issue 38: both modes).
#
# The three runs mostly wait on restarts, sessions and cut links: one after
# another they took 400 s, the repeated modes with the cores 15 % busy. So
# they run side by side, each a process with brokers, namespaces and ports
# of its own (free_port claims a port across processes), into a log printed
# whole when all three are done.
phase "fault suite: main run, key order, unordered (side by side)"
fault_suite=$(cargo test --locked --test fault_suite --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p')
[ -x "$fault_suite" ] || { echo "scripts/test.sh: the fault suite's binary was not found" >&2; exit 1; }
repeated=(sigkill trap transient reject-dead-letter reject-block churn-cooperative)
logs=$(mktemp -d)
declare -A runs
# As cargo runs a test binary: from the package's directory.
(cd host && exec "../$fault_suite" --skip=broker-restart --skip=backpressure) >"$logs/main" 2>&1 &
runs[main]=$!
(cd host && FLUMEN_FAULT_ORDERING=key FLUMEN_FAULT_EVENTS=24000 FLUMEN_FAULT_KILLS=6 \
  exec "../$fault_suite" "${repeated[@]}" network) >"$logs/key" 2>&1 &
runs[key]=$!
(cd host && FLUMEN_FAULT_ORDERING=unordered FLUMEN_FAULT_EVENTS=24000 FLUMEN_FAULT_KILLS=6 \
  exec "../$fault_suite" "${repeated[@]}") >"$logs/unordered" 2>&1 &
runs[unordered]=$!
failed=()
for run in main key unordered; do
  wait "${runs[$run]}" || failed+=("$run")
  printf '\n== fault suite: %s ==\n' "$run"
  cat "$logs/$run"
done
rm -rf "$logs"
[ ${#failed[@]} -eq 0 ] || { echo "scripts/test.sh: the fault suite failed in: ${failed[*]}" >&2; exit 1; }
# On their own after them: a broker restart, which beside them twice missed
# its deadline, once with tansu refusing the member's commits
# (UnknownMemberId) for minutes and flumen never rejoining
# (tests/fault_suite/main.rs); and backpressure in each mode, whose check
# that memory stays flat CPU contention spoils (beside them its RSS band
# was 52 MiB wide once, against 48 allowed and 40 on its own).
phase "fault suite: broker restarts and memory, on their own"
(cd host && exec "../$fault_suite" broker-restart backpressure)
for ordering in key unordered; do
  (cd host && FLUMEN_FAULT_ORDERING=$ordering FLUMEN_FAULT_EVENTS=24000 FLUMEN_FAULT_KILLS=6 \
    exec "../$fault_suite" backpressure)
done
# Memory under a 100 MB backlog with 16 calls in flight per partition,
# against the bound docs/slow-destinations.md gives.
phase "fault suite, memory under a backlog"
FLUMEN_FAULT_ORDERING=key FLUMEN_FAULT_MAX_IN_FLIGHT=16 cargo test --locked --test fault_suite -- backpressure
# SASL/SCRAM needs the tansu build that stores credentials (sqlite), a
# 30-minute build this script does not start by itself; the test is
# ignored in the main run and runs here when the build is in the cache.
phase "SASL/SCRAM against tansu with sqlite storage"
if [ -x "${FLUMEN_TANSU_SQLITE:-$HOME/.cache/flumen/tansu-sqlite/bin/tansu}" ]; then
  cargo test --locked --test e2e -- --ignored sasl_scram
else
  echo "SASL/SCRAM: SKIPPED (reported as ignored above): no tansu with sqlite storage; scripts/fetch-tansu.sh --sqlite builds it"
fi
