#!/usr/bin/env bash
# A real redis-server on 127.0.0.1 for development and tests, installed from Debian if missing.
#   redis.sh up|down|status      env: REDIS_PORT (6379), KAIROS_CACHE (<repo>/.cache)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
repo=$(cd "$here/../.." && pwd)
cache=${KAIROS_CACHE:-$repo/.cache}
port=${REDIS_PORT:-6379}
home=$cache/redis/$port
pidfile=$home/redis.pid

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
pong() { [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; }

install() {
  command -v redis-server >/dev/null && return
  echo "redis.sh: installing redis-server from Debian..."
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
}

up() {
  if running && pong; then echo "redis.sh: already up on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return; fi
  install
  mkdir -p "$home"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$pidfile" \
    --dir "$home" --logfile "$home/redis.log" --save '' --appendonly no
  for _ in $(seq 1 50); do
    if pong; then echo "redis.sh: up on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return; fi
    sleep 0.1
  done
  echo "redis.sh: redis did not answer on 127.0.0.1:$port" >&2
  tail -n 20 "$home/redis.log" >&2 || true
  exit 1
}

down() {
  if ! running; then rm -f "$pidfile"; echo "redis.sh: not running on port $port"; return; fi
  stop_pid "$pidfile" "redis.sh: stopped on port $port" 50 0.1
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if running && pong; then echo "up (pid $(cat "$pidfile"))"; else echo down; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
