#!/usr/bin/env bash
# Builds {{name}}.wasm from {{name}}.c with clang and wasi-libc.
#   $FLUMEN_C_TOOL: flumen's bindings generator and component wrapper
#     (built by flumen's `guests/build.sh c` as
#     guests/target/tool/release/flumen-c-tool);
#   $WASM_LD: the wasm linker (default /usr/bin/wasm-ld-22 if present).
set -euo pipefail
tool=$(realpath "${FLUMEN_C_TOOL:?set FLUMEN_C_TOOL to flumen-c-tool (flumen: guests/build.sh c builds it)}")
cd "$(dirname "$0")"
ld=${WASM_LD:-}
[ -n "$ld" ] || [ ! -x /usr/bin/wasm-ld-22 ] || ld=/usr/bin/wasm-ld-22
rm -rf gen
"$tool" bindings wit {{world}} gen
clang --target=wasm32-wasi ${ld:+-fuse-ld=$ld} -Os -Wall -Wextra -Werror -mexec-model=reactor \
  -Wl,--strip-all -Igen -I. {{name}}.c gen/{{world}}.c gen/{{world}}_component_type.o -o gen/{{name}}.core.wasm
"$tool" component gen/{{name}}.core.wasm {{name}}.wasm
echo "built {{name}}.wasm"
