#!/bin/sh
# not-wasm: a fixture that is not WebAssembly at all (a shell script). build.sh copies it to
# /var/cache/wasmpod/components/not-wasm.wasm; the shim must refuse it and name the magic bytes.
echo "this is not wasm"
