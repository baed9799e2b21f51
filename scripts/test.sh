#!/usr/bin/env bash
# The full test suite, exactly as a newcomer runs it (README) and as CI runs it (.ci/run).
# It installs what the tests need when missing (redis-server from Debian's packages);
# NATS is embedded from the nats-server Go module. Tests start their own servers on
# free ports and never touch the machine's NATS (4222) or Redis (6379).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
  echo "test.sh: redis-server missing; installing it from Debian's packages" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

scripts/tools.sh  # promtool for internal/deploytest and internal/metricscatalog
unformatted=$(gofmt -l cmd internal pkg)
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change these files (run gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 15m "$@" ./...
