#!/usr/bin/env bash
# A soak run of the demo: mixed traffic with random paths, methods and
# headers for DURATION (default 10 minutes), then RSS, the number of series
# in /metrics and exact totals, at the start and at the end.
#
#   ./scripts/soak.sh                 # 10 minutes
#   DURATION=60s ./scripts/soak.sh    # shorter
#
# Bounded: wrk runs for DURATION with 16 connections, the demo on a fresh
# SQLite file under target/soak/, everything on loopback. Exits non-zero when
# the series count grows past 2,000 (a label takes client input) or RSS more
# than doubles.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-600s}"
ADDR="${ADDR:-127.0.0.1:38217}"
command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }

cargo build --release --locked -p vk-parser
dir=target/soak
rm -rf "$dir" && mkdir -p "$dir"
VK_PARSER_ADDR="$ADDR" DATABASE_URL="sqlite://$PWD/$dir/soak.db?mode=rwc" RUST_LOG=warn \
  OBSERVE_LOG_FORMAT=json target/release/vk-parser >"$dir/demo.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "http://$ADDR/health/live" >/dev/null && break; sleep 0.1; done

rss() { awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; }
series() { curl -fs "http://$ADDR/metrics" | grep -vc '^#'; }
requests() { curl -fs "http://$ADDR/metrics" | awk '/^http_requests_total/ { sum += $NF } END { printf "%d", sum }'; }
report() {
  printf '%-6s rss %8s kB  series %6s  http_requests_total %10s\n' "$1" "$(rss)" "$(series)" "$(requests)"
}

report start
start_rss=$(rss)
start_total=$(requests)

cat >"$dir/mixed.lua" <<'LUA'
-- Random methods, paths (known routes, unknown ones, odd bytes) and headers.
local methods = { "GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW" }
local groups = { "durov", "team", "vk", "error_5", "error_30", "error_777", "Not-Valid", "x" }
math.randomseed(os.time())
local function pick(list) return list[math.random(#list)] end
request = function()
  local roll = math.random(10)
  local path
  if roll <= 3 then
    path = "/api/v1/groups/" .. pick(groups) .. "/comments?limit=" .. math.random(0, 200)
  elseif roll <= 5 then
    path = "/api/v1/groups/" .. pick(groups) .. "/stats"
  elseif roll <= 6 then
    path = "/api/v1/groups/" .. pick(groups) .. "/parse"
  elseif roll <= 8 then
    path = "/random/" .. math.random(1, 1000000) .. "?token=s3cret&q=" .. math.random()
  else
    path = "/"
  end
  local headers = {
    ["x-request-id"] = (math.random(2) == 1) and ("soak-" .. math.random(1, 1e9)) or "",
    ["user-agent"] = string.rep("a", math.random(1, 300)),
    ["x-user-id"] = tostring(math.random(1, 100000)),
    ["traceparent"] = (math.random(2) == 1) and "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" or "garbage",
    ["content-type"] = "application/json",
  }
  local body = (roll == 6) and '{"posts_limit":1,"comments_per_post":1}' or nil
  return wrk.format(pick(methods), path, headers, body)
end
LUA

wrk -t2 -c16 -d"$DURATION" -s "$dir/mixed.lua" "http://$ADDR" | tee "$dir/wrk.txt"
sleep 1
report end
end_rss=$(rss)
end_total=$(requests)
sent=$(awk '/requests in/ { print $1 }' "$dir/wrk.txt")
printf 'wrk completed %s requests; http_requests_total grew by %s (the difference: requests cut when wrk stopped, counted as 499)\n' \
  "$sent" "$((end_total - start_total))"
printf 'log lines: %s, every one JSON: ' "$(wc -l <"$dir/demo.log")"
# Streamed: the file can be tens of GB.
python3 -c '
import json, sys
bad = 0
with open(sys.argv[1], "rb") as lines:
    for line in lines:
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                bad += 1
print("yes" if bad == 0 else "no, %d are not" % bad)
sys.exit(1 if bad else 0)' "$dir/demo.log"

if [ "$(series)" -gt 2000 ]; then echo "series grew past 2000" >&2; exit 1; fi
if [ "$end_rss" -gt $((start_rss * 2 + 20000)) ]; then echo "RSS more than doubled" >&2; exit 1; fi
