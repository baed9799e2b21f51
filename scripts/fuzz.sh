#!/usr/bin/env bash
# Runs every fuzz target in the module for a fixed budget each:
#   ./scripts/fuzz.sh 30s        (or: make fuzz FUZZTIME=30s)
# A target is a `func FuzzXxx(f *testing.F)` in any _test.go of any package.
# A crasher is written by `go test` to that package's testdata/fuzz/FuzzXxx/
# and from then on runs as a regression case in `make test`: commit it.
# Every target runs even after one fails; the script then lists the failed
# targets and exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-${FUZZTIME:-30s}}
failed=()
n=0
start=$SECONDS
while read -r pkg dir; do
  for f in $(grep -hoE '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' "$dir"/*_test.go 2>/dev/null |
    sed -E 's/^func ([A-Za-z0-9_]+)\(.*/\1/' | sort -u); do
    n=$((n + 1))
    echo "== $pkg $f ($budget)"
    out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$budget" "$pkg" 2>&1); rc=$?
    echo "$out"
    # The fuzz engine sometimes ends a short run with "context deadline
    # exceeded" and no crasher (a worker still busy at the deadline): run
    # that target once more before calling it a failure.
    if [ $rc -ne 0 ] && grep -q "context deadline exceeded" <<<"$out" && ! grep -q "Failing input written" <<<"$out"; then
      echo "== $pkg $f: engine deadline without a crasher; running it again"
      go test -run '^$' -fuzz "^$f\$" -fuzztime "$budget" "$pkg"; rc=$?
    fi
    if [ $rc -ne 0 ]; then
      failed+=("$pkg $f")
    fi
  done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
echo "fuzz: $n targets, ${#failed[@]} failed, $((SECONDS - start))s"
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  echo "crashers are in the packages' testdata/fuzz/ directories: commit them as regression cases"
  exit 1
fi
if [ "$n" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
