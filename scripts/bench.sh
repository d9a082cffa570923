#!/usr/bin/env bash
# Criterion micro-benchmarks of every layer, each beside the bare service and
# beside the tower-http layer that does the same job, in one run.
#
#   ./scripts/bench.sh            # full run (about 3 minutes)
#   ./scripts/bench.sh --quick    # shorter measurement, for a rough look
#   ./scripts/bench.sh -- FILTER  # only benchmarks whose name matches FILTER
#
# The machines are shared and noisy: compare figures from the same run, and
# pin to one core (taskset, used when present) to steady them.
set -euo pipefail
cd "$(dirname "$0")/.."

criterion_args=(--warm-up-time 2 --measurement-time 8)
if [[ "${1:-}" == "--quick" ]]; then
  criterion_args=(--warm-up-time 1 --measurement-time 3)
  shift
fi
[[ "${1:-}" == "--" ]] && shift

pin=()
if command -v taskset >/dev/null 2>&1 && [[ "$(nproc)" -gt 1 ]]; then
  pin=(taskset -c 1)
fi

"${pin[@]}" cargo bench --locked \
  -p observe-request-id --bench request_id \
  -p observe-errors --bench error_capture \
  -- "${criterion_args[@]}" "$@"
