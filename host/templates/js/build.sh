#!/usr/bin/env bash
# Builds {{name}}.wasm from {{name}}.js with componentize-js:
#   npm install @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.25.0
# ($COMPONENTIZE_JS names another componentize-js.)
set -euo pipefail
tool=${COMPONENTIZE_JS:-}
[ -z "$tool" ] || tool=$(realpath "$tool")   # relative to the caller
cd "$(dirname "$0")"
tool=${tool:-node_modules/.bin/componentize-js}
# `-d http fetch-event`: without it the component imports wasi:http's
# incoming handler, which a flumen guest neither needs nor gets.
"$tool" {{name}}.js --wit wit -n {{world}} \
  -d http fetch-event -o {{name}}.wasm >/dev/null
echo "built {{name}}.wasm"
