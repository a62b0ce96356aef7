#!/usr/bin/env bash
# The credential-encryption benchmark (issue: credential encryption): encrypt
# and decrypt of a 64-byte token with the key cached, and the one-time key
# derivation, from C, against Python's cryptography on the same data.
source "$(dirname "$0")/lib.sh"
cd "$ST_ROOT"
ensure_system_tools
export SIMPLETUNER_CREDENTIAL_KEY="bench-master-secret"
bench_pair crypto benches/c/bench_crypto.c benches/python/bench_crypto.py
