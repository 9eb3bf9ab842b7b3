#!/usr/bin/env bash
# Throughput of 1, 2, 3... `csq triage --redis` worker processes on one consumer group: the same
# alerts each time, a redis-server of its own on a loopback port (AOF on, fsync every second) in
# a temporary directory, stopped at the end. For each worker count it prints alerts/s from the
# workers' start (model loads included) and between the first and the last result (steady
# state), and checks that every alert has a result and nothing is left pending.
#   bench/triage_workers.sh [--csq build/csq] [--model DIR] [--alerts 2000] [--workers "1 2 3"]
#                           [--max-tokens 8] [--threads 1] [--parallel 4]
set -euo pipefail

csq=build/csq
model=${CSQ_FIXTURES:-/work/shared/fixtures}/hf/qwen3-tiny-vocab
alerts=2000
counts="1 2 3"
max_tokens=8
threads=1
parallel=4
while [ $# -gt 0 ]; do
  case "$1" in
    --csq) csq=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --alerts) alerts=$2; shift 2 ;;
    --workers) counts=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    *) echo "triage_workers.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
done
[ -x "$csq" ] || { echo "triage_workers.sh: $csq is not an executable csq (give --csq)" >&2; exit 1; }
[ -d "$model" ] || [ -f "$model" ] || { echo "triage_workers.sh: no model at $model (give --model)" >&2; exit 1; }

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
redis-server --port "$port" --bind 127.0.0.1 --requirepass "$password" --dir "$dir" --appendonly yes \
  --appendfsync everysec --save '' --daemonize no >"$dir/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$dir"' EXIT
printf 'redis://:%s@127.0.0.1:%s\n' "$password" "$port" >"$dir/url"
rcli() { REDISCLI_AUTH=$password redis-cli -p "$port" "$@"; }
for _ in $(seq 50); do rcli PING >/dev/null 2>&1 && break; sleep 0.1; done

# Alerts of a few shapes (logon failures, process creations, network connections), each unique.
fill() {
  for i in $(seq 1 "$alerts"); do
    case $((i % 3)) in
      0) a="{\"id\":\"a$i\",\"rule\":\"Brute force\",\"EventID\":4625,\"TargetUserName\":\"svc$((i % 17))\",\"IpAddress\":\"10.1.$((i % 250)).$((i % 200))\",\"LogonType\":3}" ;;
      1) a="{\"id\":\"a$i\",\"rule\":\"Encoded PowerShell\",\"EventID\":1,\"Image\":\"C:\\\\Windows\\\\System32\\\\WindowsPowerShell\\\\v1.0\\\\powershell.exe\",\"CommandLine\":\"powershell -enc SQBFAFgA$i\",\"User\":\"CORP\\\\user$((i % 40))\"}" ;;
      2) a="{\"id\":\"a$i\",\"rule\":\"Outbound to rare port\",\"EventID\":3,\"DestinationIp\":\"203.0.113.$((i % 250))\",\"DestinationPort\":$((4000 + i % 1000)),\"Image\":\"C:\\\\Users\\\\Public\\\\upd$i.exe\"}" ;;
    esac
    printf 'XADD bench-alerts * alert %s\n' "$(printf '%s' "$a" | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/')"
  done | rcli >/dev/null
}

echo "csq triage --redis: $alerts alerts, model $(basename "$model"), --max-tokens $max_tokens, --threads $threads --parallel $parallel per worker"
echo "uptime before: $(uptime)"
for k in $counts; do
  rcli DEL bench-alerts bench-results >/dev/null
  fill
  [ "$(rcli XLEN bench-alerts)" = "$alerts" ] || { echo "triage_workers.sh: filling the stream failed" >&2; exit 3; }
  start_ms=$(date +%s%3N)
  pids=()
  for w in $(seq 1 "$k"); do
    "$csq" triage --model "$model" --threads "$threads" --parallel "$parallel" --max-tokens "$max_tokens" \
      --redis-file "$dir/url" --stream bench-alerts --group bench --consumer "w$w" --out-stream bench-results \
      --max-in-flight 8 --claim-after 30000 --exit-when-idle 2 --quiet --json >"$dir/w$w.json" 2>"$dir/w$w.log" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "triage_workers.sh: a worker failed:" >&2; cat "$dir"/w*.log >&2; exit 3; }; done
  first=$(rcli XRANGE bench-results - + COUNT 1 | head -1)
  last=$(rcli XREVRANGE bench-results + - COUNT 1 | head -1)
  results=$(rcli XLEN bench-results)
  distinct=$(rcli XRANGE bench-results - + | awk 'prev == "input_id" { print } { prev = $0 }' | sort -u | wc -l)
  pending=$(rcli XPENDING bench-alerts bench | head -1)
  python3 - "$k" "$alerts" "$start_ms" "${first%-*}" "${last%-*}" "$results" "$distinct" "$pending" <<'EOF'
import sys
k, alerts, start, first, last, results, distinct, pending = map(int, sys.argv[1:])
print(f"{k} worker(s): {alerts / ((last - start) / 1000):.1f} alerts/s from start (loads included), "
      f"{(alerts - 1) / max(last - first, 1) * 1000:.1f} alerts/s steady; results {results}, "
      f"distinct inputs {distinct}, pending {pending}")
if distinct != alerts or pending != 0:
    sys.exit("triage_workers.sh: an alert has no result or is still pending")
EOF
  rcli XGROUP DESTROY bench-alerts bench >/dev/null
done
echo "uptime after: $(uptime)"
