#!/usr/bin/env bash
# The real client tooling the integration tests drive: Node with the locked client libraries
# (npm ci into tests/clients/node_modules, again only when the lock file changed) and kcat.
# Node and kcat come from Debian when missing, and only then. Usage: tests/clients/install.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: missing ${missing[*]} and there is no apt-get to install them" >&2
    exit 1
  fi
  echo "install.sh: installing ${missing[*]} from Debian..."
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
stamp=$here/node_modules/.installed
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
echo "install.sh: node $(node --version), kcat $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*/\1/p')"
