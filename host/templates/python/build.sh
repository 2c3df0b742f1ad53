#!/bin/sh
# Build the plugin: componentize-py bundles CPython, app.py and graft_sdk/
# into one component for graft's {{world}} world.
set -eu
cd "$(dirname "$0")"
componentize-py -d wit -w graft:plugin/{{world}} componentize -p . app -o {{name}}.wasm
echo "wrote {{name}}.wasm"
