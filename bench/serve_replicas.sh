#!/usr/bin/env bash
# Server throughput with and without the load balancer: csq_server_load against one `csq serve`
# replica directly, against that replica through nginx running deploy/nginx/csq.conf (only its
# addresses changed), and against three replicas through nginx. Every process runs on loopback
# ports of its own, in a temporary directory, and is stopped at the end.
#   bench/serve_replicas.sh [--build build] [--model DIR] [--clients 12] [--requests 120]
#                           [--threads 1] [--parallel 4]
set -euo pipefail

build=build
model=${CSQ_FIXTURES:-/work/shared/fixtures}/hf/qwen3-tiny-vocab
clients=12
requests=120
threads=1
parallel=4
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    *) echo "serve_replicas.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
done
csq=$build/csq
load=$build/bench/csq_server_load
conf=$(dirname "$0")/../deploy/nginx/csq.conf
for f in "$csq" "$load"; do [ -x "$f" ] || { echo "serve_replicas.sh: $f is not built" >&2; exit 1; }; done

dir=$(mktemp -d)
pids=()
nginx_pid=
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() {
  for _ in $(seq 600); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.1; done
  echo "serve_replicas.sh: nothing answers on $1" >&2
  exit 3
}

ports=()
for i in 1 2 3; do
  port=$(free_port)
  "$csq" serve --model "$model" --threads "$threads" --parallel "$parallel" --queue 64 --ctx 1024 \
    --host 127.0.0.1 --port "$port" >"$dir/replica$i.log" 2>&1 &
  pids+=($!)
  ports+=("$port")
done
for p in "${ports[@]}"; do wait_up "http://127.0.0.1:$p"; done

# nginx with the shipped site, its upstream cut to the first $1 replicas.
start_nginx() {
  local n=$1 lb_port site
  lb_port=$(free_port)
  site=$(sed "s/listen 127.0.0.1:8080;/listen 127.0.0.1:$lb_port;/" "$conf")
  for i in 1 2 3; do
    if [ "$i" -le "$n" ]; then site=$(sed "s/server 127.0.0.1:808$i /server 127.0.0.1:${ports[$((i - 1))]} /" <<<"$site")
    else site=$(sed "/server 127.0.0.1:808$i /d" <<<"$site"); fi
  done
  printf '%s\n' "$site" >"$dir/csq.conf"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  include $dir/csq.conf;
}
EOF
  /usr/sbin/nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/nginx.out" 2>&1 &
  nginx_pid=$!
  lb="http://127.0.0.1:$lb_port"
  wait_up "$lb"
}
stop_nginx() { kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=; }
run_load() {
  local label=$1 url=$2 out
  out=$("$load" --url "$url" --clients "$clients" --requests "$requests")
  printf '%-34s %s | %s\n' "$label" "$(grep requests/s <<<"$out")" "$(grep '^failed' <<<"$out")"
}

echo "csq serve --threads $threads --parallel $parallel per replica, model $(basename "$model"); $clients clients, $requests requests"
echo "uptime before: $(uptime)"
run_load "1 replica, direct:" "http://127.0.0.1:${ports[0]}"
start_nginx 1
run_load "1 replica through nginx:" "$lb"
stop_nginx
start_nginx 3
run_load "3 replicas through nginx:" "$lb"
stop_nginx
echo "uptime after: $(uptime)"
