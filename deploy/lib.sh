# Shared by the service scripts in deploy/: sourced, not run.

# stop_pid PIDFILE WHAT TRIES INTERVAL: SIGTERM, wait TRIES x INTERVAL s, then SIGKILL.
stop_pid() {
  local pidfile=$1 what=$2 tries=$3 interval=$4 pid
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 "$tries"); do kill -0 "$pid" 2>/dev/null || break; sleep "$interval"; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pidfile"
  echo "$what"
}
