#!/usr/bin/env bash
# Installs the tools the deploy and metrics tests exec, when missing:
#   promtool — checks and unit-tests deploy/prometheus rules and lints /metrics scrapes.
# It goes to $PAYHOOK_TOOLS/bin (default ~/.cache/payhook/tools/bin), where the tests
# (internal/deploytest, internal/metricscatalog) look after PATH and /usr/bin.
# Source: promtool is extracted from Debian's `prometheus` package without installing it
# (so no Prometheus daemon is installed or started); if that package cannot be fetched,
# it is built from the prometheus Go module's cmd/promtool.
set -euo pipefail

TOOLS="${PAYHOOK_TOOLS:-${HOME:-/root}/.cache/payhook/tools}"
BIN="$TOOLS/bin"
mkdir -p "$BIN"

have_promtool() {
  command -v promtool >/dev/null 2>&1 || [ -x /usr/bin/promtool ] || [ -x "$BIN/promtool" ]
}

if have_promtool; then
  exit 0
fi

echo "tools.sh: promtool missing; fetching it from Debian's prometheus package" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! apt-cache show prometheus >/dev/null 2>&1; then
  $SUDO apt-get update -qq || true
fi
if (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1) && ls "$work"/prometheus_*.deb >/dev/null 2>&1; then
  dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
  install -m 0755 "$work/x/usr/bin/promtool" "$BIN/promtool"
else
  echo "tools.sh: Debian's prometheus package unavailable; building promtool from the Go module" >&2
  # v0.x.y tags of github.com/prometheus/prometheus are Prometheus 2.x/3.x releases.
  GOBIN="$BIN" go install github.com/prometheus/prometheus/cmd/promtool@latest
fi
"$BIN/promtool" --version 2>&1 | head -1 >&2
