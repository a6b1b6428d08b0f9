#!/usr/bin/env bash
# Builds the guests into WebAssembly components:
#   Rust    guests/<crate>/          → guests/target/wasm32-wasip2/release/<crate_name>.wasm
#   Python  guests/python/<name>/    → guests/target/python/<name>.wasm   (componentize-py)
#   JS      guests/js/<name>/        → guests/target/js/<name>.wasm       (componentize-js)
#   C       guests/c/<name>/         → guests/target/c/<name>.wasm        (clang, wasi-libc)
#
# `guests/build.sh` builds every language; `guests/build.sh rust python`
# only those. Install the toolchains with scripts/install-guest-toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
wit="$here/../wit"

# Rebuilds `out` from the files under `src` only when one of them (or the
# WIT contract) is newer, since Python and JavaScript builds take seconds
# each.
stale() {
  local out=$1 src=$2
  [ ! -f "$out" ] || [ -n "$(find "$src" "$wit" -newer "$out" -type f -print -quit)" ]
}

build_rust() {
  # simd128: wasmtime compiles Wasm SIMD to the host's vector instructions,
  # and memchr (so regex's literal search) uses it; the filter's scan of
  # each value is then several times faster.
  local simd="-C target-feature=+simd128"
  if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    RUSTFLAGS="$simd" cargo build --locked --release --target wasm32-wasip2
  else
    for f in /usr/bin/rustc /usr/bin/cargo /usr/bin/wasm-ld-22 /usr/lib/wasm32-wasi/libc.a; do
      [ -e "$f" ] || { echo "guests/build.sh: $f missing; run scripts/install-guest-toolchain.sh" >&2; exit 1; }
    done
    # Debian's cargo must match the std source it builds (-Zbuild-std), and
    # Debian ships no rust-lld, so the linker is named explicitly.
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="$simd -L native=/usr/lib/wasm32-wasi -C link-arg=--wasm-ld-path=/usr/bin/wasm-ld-22" \
      /usr/bin/cargo build --locked --release -Zbuild-std=std,panic_abort --target wasm32-wasip2
  fi
  ls -l target/wasm32-wasip2/release/*.wasm
}

build_python() {
  local cpy="$here/../target/guest-venv/bin/componentize-py"
  [ -x "$cpy" ] || { echo "guests/build.sh: $cpy missing; run scripts/install-guest-toolchain.sh" >&2; exit 1; }
  mkdir -p target/python
  for dir in python/*/; do
    local name world out
    name=$(basename "$dir")
    # The world is named in the app's first line of code: `class Delivery`
    # is a sink, `class Interception` an interceptor.
    if grep -q '^class Delivery' "$dir/app.py"; then world=sink; else world=interceptor; fi
    out="$here/target/python/$name.wasm"
    if stale "$out" "$dir"; then
      (cd "$dir" && "$cpy" -d "$wit" -w "$world" componentize app -o "$out" >/dev/null)
    fi
    ls -l "$out"
  done
}

build_js() {
  local cjs="$here/js/node_modules/.bin/componentize-js"
  [ -x "$cjs" ] || { echo "guests/build.sh: $cjs missing; run scripts/install-guest-toolchain.sh" >&2; exit 1; }
  mkdir -p target/js
  for dir in js/*/; do
    local name world out
    name=$(basename "$dir")
    [ "$name" != node_modules ] || continue
    if grep -q '^export const delivery' "$dir"/*.js; then world=sink; else world=interceptor; fi
    out="$here/target/js/$name.wasm"
    if stale "$out" "$dir"; then
      # `-d http fetch-event`: without it the component imports wasi:http's
      # incoming handler, which a flumen guest neither needs nor gets.
      "$cjs" "$dir/$name.js" --wit "$wit" -n "$world" -d http fetch-event -o "$out" >/dev/null
    fi
    ls -l "$out"
  done
}

build_c() {
  for f in /usr/bin/clang /usr/bin/wasm-ld-22 /usr/lib/wasm32-wasi/libc.a; do
    [ -e "$f" ] || { echo "guests/build.sh: $f missing; run scripts/install-guest-toolchain.sh" >&2; exit 1; }
  done
  # The bindings generator and component wrapper (c/tool), built once.
  cargo build --quiet --locked --release --manifest-path c/tool/Cargo.toml --target-dir target/tool
  local tool="$here/target/tool/release/flumen-c-tool"
  mkdir -p target/c
  for dir in c/*/; do
    local name world out gen
    name=$(basename "$dir")
    [ "$name" != tool ] || continue
    # A sink defines the delivery export, an interceptor the interception one.
    if grep -q 'exports_flumen_pipeline_delivery_deliver' "$dir"/*.c; then world=sink; else world=interceptor; fi
    out="$here/target/c/$name.wasm"
    if stale "$out" "$dir"; then
      gen="$here/target/c/$name-gen"
      rm -rf "$gen"
      "$tool" bindings "$wit" "$world" "$gen"
      # Debian's clang 14 looks for wasm-ld-14, which Debian does not ship
      # beside rustc-web's LLVM 22; wasm-ld-22 links its output fine.
      clang --target=wasm32-wasi -fuse-ld=/usr/bin/wasm-ld-22 -Os -Wall -Wextra -Werror \
        -mexec-model=reactor -Wl,--strip-all -I"$gen" \
        "$dir"/*.c "$gen/$world.c" "$gen/${world}_component_type.o" -o "$gen/$name.core.wasm"
      "$tool" component "$gen/$name.core.wasm" "$out"
    fi
    ls -l "$out"
  done
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
