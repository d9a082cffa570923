#!/usr/bin/env bash
# Criterion micro-benchmarks of every layer, each beside the bare service and
# beside the tower-http layer that does the same job (benches/layers.rs), and
# of the request log and its writer (benches/logs.rs), and of the server
# span (benches/trace.rs).
#
#   ./scripts/bench.sh              # 3 rounds of every benchmark, then a summary
#   ./scripts/bench.sh --quick      # 1 short round, for a rough look
#   ROUNDS=5 ./scripts/bench.sh     # more rounds
#   BENCH_FILTER=metrics/ ./scripts/bench.sh   # only the benchmarks matching
#   ./scripts/bench.sh --instructions   # instructions per request on the request path
#                                       # (valgrind), the same figure on every run
#   ./scripts/bench.sh --load       # wrk over real TCP: bare router, MetricsLayer,
#                                   # axum-prometheus, the whole obs.layer() stack, with
#                                   # its log written and its spans exported
#   ./scripts/bench.sh --compare    # one app three ways (bare, the usual crates, observe),
#                                   # every signal on, under wrk: req/s, p50/p99, server
#                                   # CPU per request (and by thread), ratios to bare
#
# These machines are shared and noisy: one benchmark can shift by 100 ns
# between two runs a minute apart. So every round runs every benchmark once,
# pinned to one core, and the summary gives each layer's cost over the bare
# service in each round (the two measured minutes apart at most) and the
# median of those differences over the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # installs Debian package $1 when its command is missing
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "installing $1" >&2
    apt-get install -y "$1" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$1" >/dev/null; }
  fi
}

if [[ "${1:-}" == "--instructions" ]]; then
  need valgrind
  cargo build --locked --release -p observe-tests --example layer_cost
  binary=target/release/examples/layer_cost
  count() { # instructions of one run on the request path (inside run/run_router): variant, requests
    valgrind --tool=callgrind --toggle-collect='layer_cost::run*' --callgrind-out-file=/dev/null "$binary" "$1" "$2" 2>&1 |
      awk '/refs:/ { gsub(",", "", $4); print $4 }'
  }
  declare -A per_request
  for variant in bare bare_with_id request_id_generate request_id_keep \
    tower_http_request_id_generate tower_http_request_id_keep \
    error_capture_ok tower_http_catch_panic_ok router router_identity metrics axum_prometheus \
    router_request_id request_log observe observe_router observe_router_failures_only; do
    # The difference of two run lengths cancels start-up and shut-down.
    few=$(count "$variant" 1000)
    many=$(count "$variant" 11000)
    per_request[$variant]=$(((many - few) / 10000))
  done
  row() { printf '%-34s %8d instructions  %+6d over %s\n' "$1" "${per_request[$1]}" \
    "$((per_request[$1] - per_request[$2]))" "$2"; }
  printf '%-34s %8d instructions\n' bare "${per_request[bare]}"
  printf '%-34s %8d instructions\n' bare_with_id "${per_request[bare_with_id]}"
  row request_id_generate bare
  row request_id_keep bare_with_id
  row tower_http_request_id_generate bare
  row tower_http_request_id_keep bare_with_id
  row error_capture_ok bare
  row tower_http_catch_panic_ok bare
  printf '%-34s %8d instructions\n' router "${per_request[router]}"
  row router_identity router
  row metrics router
  row axum_prometheus router
  printf '%-34s %8d instructions\n' router_request_id "${per_request[router_request_id]}"
  row request_log router_request_id
  row observe router
  row observe_router router
  row observe_router_failures_only router
  exit 0
fi

if [[ "${1:-}" == "--compare" ]]; then
  # The server on core 0 (all its threads: the log writer and the span
  # exporter too), wrk and the OTLP/HTTP sink on core 1; rounds interleaved,
  # each run bounded to COMPARE_SECONDS.
  need wrk
  cargo build --locked --release -p observe-tests --example compare_server --example otlp_sink
  dir=target/compare
  rm -rf "$dir" && mkdir -p "$dir"
  server=target/release/examples/compare_server
  addr=127.0.0.1:38127
  url="http://$addr/api/v1/groups/42/comments?limit=20"
  taskset -c 1 target/release/examples/otlp_sink "$dir/spans.count" >"$dir/sink.txt" &
  sink_pid=$!
  trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do [[ -s "$dir/sink.txt" ]] && break; sleep 0.1; done
  sink=$(head -1 "$dir/sink.txt")
  hz=$(getconf CLK_TCK)
  # User and system clock ticks of the whole server process (all threads).
  ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
  # The same for each of its threads, by thread id and name.
  thread_ticks() {
    for task in /proc/"$1"/task/*; do
      printf '%s %s %s\n' "$(basename "$task")" "$(tr ' ' _ <"$task/comm")" "$(awk '{ print $14, $15 }' "$task/stat")"
    done | sort
  }
  spans() { cat "$dir/spans.count" 2>/dev/null || echo 0; }
  # Spans still on their way after the run: wait until the count holds
  # still for 2 s (the OpenTelemetry SDK exports every 5 s), 12 s at most.
  settled_spans() {
    local last now still=0
    last=$(spans)
    for _ in $(seq 1 24); do
      sleep 0.5
      now=$(spans)
      if [[ "$now" == "$last" ]]; then still=$((still + 1)); else still=0; fi
      [[ $still -ge 4 ]] && break
      last=$now
    done
    echo "$now"
  }
  results="$dir/results.tsv"
  : >"$results"
  printf '%-8s %5s %12s %10s %10s %14s %18s %10s %10s\n' variant round requests/s p50 p99 "CPU us/req" "user+sys us/req" spans/req lines/req
  for round in $(seq 1 "${ROUNDS:-3}"); do
    for variant in ${COMPARE_VARIANTS:-bare usual observe}; do
      rm -f "$dir"/*.log
      taskset -c 0 "$server" "$variant" "$addr" "$sink" "$dir" 2>"$dir/$variant.err" &
      pid=$!
      for _ in $(seq 1 100); do
        curl -fs "$url" >/dev/null 2>&1 && break
        sleep 0.1
      done
      spans_before=$(settled_spans)
      read -r user_before sys_before < <(ticks "$pid")
      thread_ticks "$pid" >"$dir/threads.before"
      out=$(taskset -c 1 wrk -t1 -c32 -d"${COMPARE_SECONDS:-10}s" --latency "$url")
      read -r user_after sys_after < <(ticks "$pid")
      thread_ticks "$pid" >"$dir/threads.after"
      spans_after=$(settled_spans)
      kill "$pid"
      wait "$pid" 2>/dev/null || true
      requests=$(awk '/requests in/ { print $1 }' <<<"$out")
      rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
      p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
      p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
      per_request() { awk -v t="$1" -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }'; }
      user=$(per_request $((user_after - user_before)))
      sys=$(per_request $((sys_after - sys_before)))
      cpu=$(per_request $((user_after - user_before + sys_after - sys_before)))
      exported=$(awk -v s=$((spans_after - spans_before)) -v n="$requests" 'BEGIN { printf "%.3f", s / n }')
      lines=0
      if [[ -f "$dir/$variant.log" ]]; then lines=$(wc -l <"$dir/$variant.log"); fi
      logged=$(awk -v l="$lines" -v n="$requests" 'BEGIN { printf "%.3f", l / n }')
      printf '%-8s %5s %12s %10s %10s %14s %18s %10s %10s\n' "$variant" "$round" "$rps" "$p50" "$p99" "$cpu" "$user + $sys" "$exported" "$logged"
      printf '%s\t%s\t%s\t%s\n' "$variant" "$rps" "$cpu" "$user" >>"$results"
      # Where the server's CPU went: user + system us per request, by thread.
      join "$dir/threads.before" "$dir/threads.after" | awk -v n="$requests" -v hz="$hz" '
        { user = ($6 - $3) * 1e6 / hz / n; sys = ($7 - $4) * 1e6 / hz / n
          if (user + sys > 0) { printf "%s%s %.2f + %.2f", sep, $2, user, sys; sep = ", " } }
        END { if (sep != "") printf "\n" }' | sed 's/^/           threads: /'
    done
  done
  echo
  echo "medians over the rounds, and ratios to bare:"
  for variant in ${COMPARE_VARIANTS:-bare usual observe}; do
    rps=$(awk -F'\t' -v v="$variant" '$1 == v { print $2 }' "$results" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    cpu=$(awk -F'\t' -v v="$variant" '$1 == v { print $3 }' "$results" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    user=$(awk -F'\t' -v v="$variant" '$1 == v { print $4 }' "$results" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    printf '%s\t%s\t%s\t%s\n' "$variant" "$rps" "$cpu" "$user"
  done >"$dir/medians.tsv"
  bare_rps=$(awk -F'\t' '$1 == "bare" { print $2 }' "$dir/medians.tsv")
  bare_cpu=$(awk -F'\t' '$1 == "bare" { print $3 }' "$dir/medians.tsv")
  bare_user=$(awk -F'\t' '$1 == "bare" { print $4 }' "$dir/medians.tsv")
  # User time is the server's own code; system time is mostly the loopback
  # TCP path, which moves with the machine's load from one day to the next.
  printf '%-8s %12s %14s %16s %14s %14s %14s\n' variant requests/s "CPU us/req" "throughput/bare" "CPU/bare" "user us/req" "user/bare"
  while IFS=$'\t' read -r variant rps cpu user; do
    awk -v v="$variant" -v r="$rps" -v c="$cpu" -v u="$user" -v br="${bare_rps:-0}" -v bc="${bare_cpu:-0}" -v bu="${bare_user:-0}" 'BEGIN {
      printf "%-8s %12.0f %14.2f %16s %14s %14.2f %14s\n", v, r, c,
        (br > 0 ? sprintf("%.2fx", r / br) : "-"), (bc > 0 ? sprintf("%.2fx", c / bc) : "-"),
        u, (bu > 0 ? sprintf("%.2fx", u / bu) : "-")
    }'
  done <"$dir/medians.tsv"
  exit 0
fi

if [[ "${1:-}" == "--load" ]]; then
  need wrk
  cargo build --locked --release -p observe-tests --example load_server
  server=target/release/examples/load_server
  addr=127.0.0.1:38117
  url="http://$addr/api/v1/groups/42/comments?limit=20"
  # Server on core 0, wrk on core 1: one core each, every run bounded to 8 s.
  printf '%-16s %5s %12s %10s %10s\n' variant round requests/s p50 p99
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for variant in ${LOAD_VARIANTS:-bare identity metrics axum_prometheus observe observe_logged observe_exported}; do
      taskset -c 0 "$server" "$variant" "$addr" &
      pid=$!
      for _ in $(seq 1 50); do
        curl -fs "$url" >/dev/null 2>&1 && break
        sleep 0.1
      done
      out=$(taskset -c 1 wrk -t1 -c16 -d8s --latency "$url")
      kill "$pid"
      wait "$pid" 2>/dev/null || true
      rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
      p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
      p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
      printf '%-16s %5s %12s %10s %10s\n' "$variant" "$round" "$rps" "$p50" "$p99"
    done
  done
  exit 0
fi

rounds="${ROUNDS:-3}"
criterion_args=(--warm-up-time 1 --measurement-time 5)
if [[ "${1:-}" == "--quick" ]]; then
  rounds=1
  criterion_args=(--warm-up-time 1 --measurement-time 2)
fi

pin=()
if command -v taskset >/dev/null 2>&1 && [[ "$(nproc)" -gt 1 ]]; then
  pin=(taskset -c 1)
fi

benches=(layers logs trace)
cargo bench --locked -p observe-tests "${benches[@]/#/--bench=}" --no-run
# The span benchmark exports to a receiver in its own process on the other
# core, so that decoding the spans is not counted as the request path's cost.
cargo build --locked --release -p observe-tests --example otlp_sink
sink_dir=target/bench-sink
rm -rf "$sink_dir" && mkdir -p "$sink_dir"
sink_pin=()
if [[ ${#pin[@]} -gt 0 ]]; then sink_pin=(taskset -c 0); fi
"${sink_pin[@]}" target/release/examples/otlp_sink "$sink_dir/spans.count" >"$sink_dir/sink.txt" &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [[ -s "$sink_dir/sink.txt" ]] && break; sleep 0.1; done
OBSERVE_BENCH_OTLP_ENDPOINT=$(head -1 "$sink_dir/sink.txt")
export OBSERVE_BENCH_OTLP_ENDPOINT
results="target/bench-rounds.tsv"
: >"$results"
stamp="target/bench-round.stamp"
for round in $(seq 1 "$rounds"); do
  echo "==> round $round of $rounds"
  touch "$stamp"
  for bench in "${benches[@]}"; do
    "${pin[@]}" cargo bench --locked -p observe-tests --bench "$bench" -- "${criterion_args[@]}" ${BENCH_FILTER:+"$BENCH_FILTER"} |
      grep -E 'time:|thrpt:' || true
  done
  # Only what this round measured, not what an earlier, filtered run left.
  for estimates in $(find target/criterion -path '*/new/estimates.json' -newer "$stamp"); do
    name=$(basename "$(dirname "$(dirname "$estimates")")")
    python3 -c 'import json,sys; print(sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))["mean"]["point_estimate"], sep="\t")' \
      "$round" "$name" "$estimates" >>"$results"
  done
done

python3 - "$results" <<'PY'
import collections, statistics, sys

rounds = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    round_, name, mean = line.split("\t")
    rounds[int(round_)][name] = float(mean)

# (benchmark, its baseline, budget in ns or None)
rows = [
    ("request_id_observe_generate_v7", "request_id_bare", 300),
    ("request_id_observe_keep_incoming", "request_id_bare_with_id", 300),
    ("request_id_tower_http_generate_v4", "request_id_bare", None),
    ("request_id_tower_http_keep_incoming", "request_id_bare_with_id", None),
    ("error_capture_observe_ok", "error_capture_bare", 50),
    ("error_capture_tower_http_ok", "error_capture_bare", None),
    ("metrics_identity_layer", "metrics_bare", None),
    ("metrics_observe", "metrics_bare", 250),
    ("metrics_axum_prometheus", "metrics_bare", None),
]
print()
print(f"{'benchmark':40} {'mean (median of rounds)':>24} {'over bare, per round':>30} {'median':>8} {'budget':>7}")
for name, base, budget in rows:
    present = [r for r in rounds.values() if name in r and base in r]
    if not present:
        continue
    means = [r[name] for r in present]
    diffs = [r[name] - r[base] for r in present]
    per_round = " ".join(f"{d:+.0f}" for d in diffs)
    verdict = "" if budget is None else (f"{budget} ok" if statistics.median(diffs) <= budget else f"{budget} OVER")
    print(f"{name:40} {statistics.median(means):21.0f} ns {per_round:>30} {statistics.median(diffs):+7.0f} {verdict:>7}")
for name in ("request_id_bare", "request_id_bare_with_id", "error_capture_bare", "metrics_bare",
             "request_id_new_v7_alone", "error_capture_observe_panic", "error_capture_tower_http_panic"):
    means = [r[name] for r in rounds.values() if name in r]
    if means:
        print(f"{name:40} {statistics.median(means):21.0f} ns")
print()
def paired(title, rows):
    """Rows of (benchmark, budget in ns or None): paired differences per round."""
    print(title)
    for name, budget in rows:
        means = [r[name] for r in rounds.values() if name in r]
        if means:
            per_round = " ".join(f"+{m:.0f}" for m in means)
            verdict = "" if budget is None else (f"{budget} ok" if statistics.median(means) <= budget else f"{budget} OVER")
            print(f"{name:40} {per_round:>30} {statistics.median(means):+7.0f} {verdict:>7}")
    print()

paired("paired: the layer's cost over the bare router, timed in alternating chunks (criterion mean per round)",
       (("metrics_paired_identity_layer", None), ("metrics_paired_observe", 250),
        ("metrics_paired_axum_prometheus", None)))
paired("request log line: its cost over RequestIdLayer alone, paired (criterion mean per round)",
       (("request_log_paired_observe", 1500), ("request_log_paired_observe_lossless", 1500),
        ("request_log_paired_tower_http_trace_json", None)))
paired("server span: its cost over RequestIdLayer alone, paired (criterion mean per round)",
       (("trace_paired_observe_sampled", 2500), ("trace_paired_observe_sampled_out", 300),
        ("trace_paired_tower_http_otel", None)))
means = [r["file_lines"] for r in rounds.values() if "file_lines" in r]
if means:
    rates = [1e9 / m for m in means]
    worst = min(rates)
    print(f"{'log_writer_file_lines':40} {' '.join(f'{x / 1e3:.0f}k' for x in rates):>30} lines/s, worst {worst / 1e3:.0f}k, budget 500k {'ok' if worst >= 500e3 else 'OVER'}")
print()
for name in ("metrics_render_10k_http_series", "metrics_render_10k_facade_series"):
    means = [r[name] for r in rounds.values() if name in r]
    if means:
        worst = max(means) / 1e6
        print(f"{name:40} {statistics.median(means) / 1e6:18.2f} ms   worst round {worst:.2f} ms, budget 10 ms {'ok' if worst <= 10 else 'OVER'}")
PY
