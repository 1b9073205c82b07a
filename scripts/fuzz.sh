#!/usr/bin/env bash
# Fuzzes every parser of untrusted files for a bounded time: scripts/fuzz.sh [seconds] [target...]
# (default 60 s per target; see fuzz/run.sh).
exec "$(cd "$(dirname "$0")/.." && pwd)/fuzz/run.sh" "$@"
