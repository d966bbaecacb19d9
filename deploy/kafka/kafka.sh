#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller) on 127.0.0.1, for development
# and tests. Jars come from Maven Central through mvn; nothing else is downloaded.
#   kafka.sh up|down|status      env: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (port+1),
#                                     KAIROS_CACHE (<repo>/.cache), KAFKA_FRESH=1 wipes data
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
repo=$(cd "$here/../.." && pwd)
cache=${KAIROS_CACHE:-$repo/.cache}
port=${KAFKA_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
lib=$cache/kafka/lib
home=$cache/kafka/$port
pidfile=$home/kafka.pid
log=$home/kafka.log

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

fetch_jars() {
  # Re-fetch only when the pom changed; a stale lib/ with mixed versions would break the broker.
  local stamp=$cache/kafka/pom.sha256 want
  want=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
  if [ -d "$lib" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn not found (install maven)" >&2; exit 1; }
  rm -rf "$lib"
  echo "kafka.sh: fetching broker jars from Maven Central..."
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$lib" -DincludeScope=runtime
  echo "$want" > "$stamp"
}

write_config() {
  mkdir -p "$home"
  cat > "$home/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$home/data
# One broker: internal topics must not ask for 3 replicas, or the group and transaction
# coordinators (both needed by Faust) never come up. Few partitions start faster.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.partitions=4
auto.create.topics.enable=true
# The cleaner stays on: Faust changelogs are compacted topics.
log.cleaner.enable=true
log.cleaner.dedupe.buffer.size=16777216
log.segment.bytes=67108864
log.retention.hours=24
PROPS
  cat > "$home/log4j2.properties" <<'LOG'
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=WARN
logger.apache.name=org.apache.kafka
logger.apache.level=WARN
logger.started.name=kafka.server.KafkaRaftServer
logger.started.level=INFO
LOG
}

answers() {
  # Started is not ready: ask for metadata like a client would.
  python3 - "$port" <<'PY' 2>/dev/null
import socket, struct, sys
port = int(sys.argv[1])
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    # ApiVersions request v0: api_key 18, version 0, correlation 1, client id "k"
    body = struct.pack(">hhih", 18, 0, 1, 1) + b"k"
    s.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", s.recv(4))[0]
    data = b""
    while len(data) < size:
        data += s.recv(size - len(data))
    corr, err = struct.unpack(">ih", data[:6])
    sys.exit(0 if corr == 1 and err == 0 else 1)
except OSError:
    sys.exit(1)
PY
}

up() {
  if running && answers; then echo "kafka.sh: broker already up on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return; fi
  fetch_jars
  [ "${KAFKA_FRESH:-0}" = 1 ] && rm -rf "$home/data"
  write_config
  if [ ! -f "$home/data/meta.properties" ]; then
    local cluster
    cluster=$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -cp "$lib/*" kafka.tools.StorageTool format -t "$cluster" \
      -c "$home/server.properties" -g >/dev/null
  fi
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$home/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$home/server.properties" > "$log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 180); do
    if answers; then echo "kafka.sh: broker up on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return; fi
    if ! running; then break; fi
    sleep 0.5
  done
  echo "kafka.sh: broker did not come up on 127.0.0.1:$port; last log lines:" >&2
  tail -n 40 "$log" >&2
  down
  exit 1
}

down() {
  if ! running; then rm -f "$pidfile"; echo "kafka.sh: not running on port $port"; return; fi
  stop_pid "$pidfile" "kafka.sh: broker on port $port stopped" 40 0.5
}

status() {
  if running && answers; then echo "up (pid $(cat "$pidfile"), 127.0.0.1:$port)"; else echo "down"; exit 1; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
