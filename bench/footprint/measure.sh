#!/usr/bin/env bash
# Builds each program here and prints, per program, the packages it links
# (go list -deps, all / outside the standard library), the modules in the
# binary (go version -m, handoff's own included) and the binary's size
# (default build flags, and stripped with -ldflags='-s -w').
# Run from anywhere: bench/footprint/measure.sh
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '| program | packages (all / non-std) | modules | binary | stripped |\n|---|---:|---:|---:|---:|\n'
for d in */; do
  p=${d%/}
  go build -o "$out/$p" "./$p"
  go build -ldflags='-s -w' -o "$out/$p.s" "./$p"
  all=$(go list -deps "./$p" | wc -l)
  nonstd=$(go list -deps -f '{{if not .Standard}}x{{end}}' "./$p" | grep -c x)
  mods=$(go version -m "$out/$p" | grep -cE '^\s+dep\s')
  size=$(stat -c %s "$out/$p")
  ssize=$(stat -c %s "$out/$p.s")
  printf '| %s | %d / %d | %d | %.1f MB | %.1f MB |\n' "$p" "$all" "$nonstd" "$mods" "$(echo "$size/1048576" | bc -l)" "$(echo "$ssize/1048576" | bc -l)"
done
