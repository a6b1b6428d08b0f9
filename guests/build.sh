#!/usr/bin/env bash
# Builds the guests into WebAssembly components:
#   Rust    guests/{library,fixtures}/<name>/  → guests/target/wasm32-wasip2/release/<name>.wasm
#   Python  guests/examples/python/<name>/     → guests/target/python/<name>.wasm   (componentize-py)
#   JS      guests/examples/js/<name>/         → guests/target/js/<name>.wasm       (componentize-js)
#   C       guests/examples/c/<name>/          → guests/target/c/<name>.wasm        (clang, wasi-libc)
#
# `guests/build.sh` builds every language; `guests/build.sh rust python`
# only those. Install the toolchains with scripts/install-guest-toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
wit="$here/../wit"

# Rebuilds `out` from the files under `src` only when one of them (or the
# WIT contract, or a language helper) is newer, since Python and JavaScript builds take seconds
# each.
stale() {
  local out=$1 src=$2
  [ ! -f "$out" ] || [ -n "$(find "$src" "$wit" "$here/helpers" -newer "$out" -type f -print -quit)" ]
}

build_rust() {
  # simd128: wasmtime compiles Wasm SIMD to the host's vector instructions,
  # and memchr (so regex's literal search) uses it; the filter's scan of
  # each value is then several times faster.
  local simd="-C target-feature=+simd128"
  if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    RUSTFLAGS="$simd" cargo build --locked --release --target wasm32-wasip2
  else
    need /usr/bin/rustc /usr/bin/cargo /usr/bin/wasm-ld-22 /usr/lib/wasm32-wasi/libc.a
    # Debian's cargo must match the std source it builds (-Zbuild-std), and
    # Debian ships no rust-lld, so the linker is named explicitly.
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="$simd -L native=/usr/lib/wasm32-wasi -C link-arg=--wasm-ld-path=/usr/bin/wasm-ld-22" \
      /usr/bin/cargo build --locked --release -Zbuild-std=std,panic_abort --target wasm32-wasip2
  fi
  ls -l target/wasm32-wasip2/release/*.wasm
}

# Builds every guest directory of language $1 whose component is stale, with
# `$3 DIR WORLD OUT`. A guest is a sink when one of its files matches $2 (it
# defines the `delivery` export), an interceptor otherwise.
build_each() {
  local lang=$1 sink_pattern=$2 builder=$3
  mkdir -p "target/$lang"
  for dir in examples/"$lang"/*/; do
    local name world out
    name=$(basename "$dir")
    case "$name" in node_modules) continue ;; esac
    if grep -qs -- "$sink_pattern" "$dir"/*; then world=sink; else world=interceptor; fi
    out="$here/target/$lang/$name.wasm"
    if stale "$out" "$dir"; then
      "$builder" "${dir%/}" "$world" "$out"
    fi
    ls -l "$out"
  done
}

need() {
  for f in "$@"; do
    [ -e "$f" ] || { echo "guests/build.sh: $f missing; run scripts/install-guest-toolchain.sh" >&2; exit 1; }
  done
}

componentize_python() {
  (cd "$1" && "$here/../target/guest-venv/bin/componentize-py" -d "$wit" -w "$2" componentize -p . -p "$here/helpers/python" app -o "$3" >/dev/null)
}

componentize_js() {
  # A guest with its own wit/ (flumen's world plus WASI interfaces it
  # imports from JavaScript) is built against the world defined there.
  local wit_dir=$wit world=$2
  if [ -d "$1/wit" ]; then
    wit_dir="$1/wit"
    world=$(sed -n 's/^world \([a-z-]*\).*/\1/p' "$wit_dir"/*.wit | head -n 1)
  fi
  # `-d http fetch-event`: without it the component imports wasi:http's
  # incoming handler, which a flumen guest neither needs nor gets.
  "$here/examples/js/node_modules/.bin/componentize-js" "$1/$(basename "$1").js" --wit "$wit_dir" -n "$world" \
    -d http fetch-event -o "$3" >/dev/null
}

componentize_c() {
  local name gen tool="$here/target/tool/release/flumen-c-tool"
  name=$(basename "$1")
  gen="$here/target/c/$name-gen"
  rm -rf "$gen"
  "$tool" bindings "$wit" "$2" "$gen"
  # Debian's clang 14 looks for wasm-ld-14, which Debian does not ship
  # beside rustc-web's LLVM 22; wasm-ld-22 links its output fine.
  clang --target=wasm32-wasi -fuse-ld=/usr/bin/wasm-ld-22 -O2 -Wall -Wextra -Werror \
    -mexec-model=reactor -Wl,--strip-all -I"$gen" -I"$here/helpers/c" \
    "$1"/*.c "$gen/$2.c" "$gen/${2}_component_type.o" -o "$gen/$name.core.wasm"
  "$tool" component "$gen/$name.core.wasm" "$3"
}

build_python() {
  need "$here/../target/guest-venv/bin/componentize-py"
  build_each python '^class Delivery' componentize_python
}

build_js() {
  need "$here/examples/js/node_modules/.bin/componentize-js"
  build_each js '^export const delivery' componentize_js
}

build_c() {
  need /usr/bin/clang /usr/bin/wasm-ld-22 /usr/lib/wasm32-wasi/libc.a
  # The bindings generator and component wrapper (tools/c-bindgen), built once.
  cargo build --quiet --locked --release --manifest-path tools/c-bindgen/Cargo.toml --target-dir target/tool
  build_each c 'exports_flumen_pipeline_delivery_deliver' componentize_c
}

langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(rust python js c)
for lang in "${langs[@]}"; do
  case "$lang" in
    rust) build_rust ;;
    python) build_python ;;
    js) build_js ;;
    c) build_c ;;
    *) echo "guests/build.sh: unknown language \`$lang\` (rust, python, js, c)" >&2; exit 2 ;;
  esac
done
