#!/usr/bin/env bash
# promtool, which tests/unit/test_deploy_monitoring.py runs over the alert rules and the
# dashboard's queries: installed from Debian's prometheus package (it ships /usr/bin/promtool)
# when missing, and only then. Usage: deploy/prometheus/promtool.sh
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool.sh: promtool is missing and there is no apt-get: install Prometheus' promtool" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus
command -v promtool >/dev/null || { echo "promtool.sh: prometheus installed, no promtool" >&2; exit 1; }
echo "promtool.sh: $(promtool --version 2>&1 | head -1)"
