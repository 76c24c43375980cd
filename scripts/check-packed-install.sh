#!/usr/bin/env bash
# What a user of the packed package meets: `npm pack` this checkout, install the tarball into a new project, and
# time the first `npx pgdev -d` there. Fails if that start takes over START_LIMIT_S seconds, prints nothing for
# SILENCE_LIMIT_S seconds while it waits, or leaves a server that does not answer.
#
#   bash scripts/check-packed-install.sh          (after `npm run build`; npm ci runs it)
#
# Everything runs under a temporary folder (the project, XDG_DATA_HOME), removed at the end. Needs the npm registry
# (or npm's cache) for the package's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

START_LIMIT_S=${START_LIMIT_S:-6}
SILENCE_LIMIT_S=${SILENCE_LIMIT_S:-2}
NAME=packed-check

fail() { echo "check-packed-install: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

[ -f dist/index.js ] && [ -f template/pgdata.tar ] || fail "dist/ or template/pgdata.tar is missing; run npm run build first"

work=$(mktemp -d "${TMPDIR:-/tmp}/pgdev-packed-XXXXXX")
export XDG_DATA_HOME="$work/data"
unset DATABASE_URL PGDEV_NAME
# npm's variables from an outer `npm run` would change what pgdev prints, and its own config what npm installs.
for var in $(env | grep -o '^npm_[A-Za-z_]*' || true); do unset "$var"; done
cleanup() {
  (cd "$work/project" 2>/dev/null && ./node_modules/.bin/pgdev stop "$NAME" >/dev/null 2>&1) || true
  rm -rf "$work"
}
trap cleanup EXIT

started=$(now_ms)
# --ignore-scripts: pack what the last build made, without building again (`prepare` would).
tarball=$(npm pack --ignore-scripts --silent --pack-destination "$work")
packed=$(now_ms)
size_kb=$(( $(stat -c %s "$work/$tarball") / 1024 ))
echo "packed $tarball: $size_kb KiB in $(( packed - started )) ms"

mkdir "$work/project"
cd "$work/project"
echo '{ "name": "packed-check", "version": "1.0.0", "private": true }' > package.json
npm install --no-audit --no-fund --silent "$work/$tarball" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "npm install of the tarball failed"; }
installed=$(now_ms)
echo "installed into a new project in $(( installed - packed )) ms"

# The first start, with each line of its output stamped with the milliseconds since the command began.
first_line_ms=""
last_line=""
begin=$(now_ms)
while IFS= read -r line; do
  at=$(( $(now_ms) - begin ))
  [ -n "$first_line_ms" ] || first_line_ms=$at
  last_line=$line
  printf '  %6d ms | %s\n' "$at" "$line"
done < <(npx pgdev -d -n "$NAME" -p 0 -P 0 --shadow-db-port 0 2>&1; echo "exit status $?")
total_ms=$(( $(now_ms) - begin ))
echo "first npx pgdev -d: ready in $total_ms ms, first output after ${first_line_ms:-(none)} ms"
[ "$last_line" = "exit status 0" ] || fail "the first npx pgdev -d failed ($last_line)"

./node_modules/.bin/pgdev ls | grep -q "$NAME.*running" || fail "the server is not running after pgdev -d"
answer=$(echo "SELECT 1;" | ./node_modules/.bin/pgdev load "$NAME" - 2>&1) || fail "the server does not answer: $answer"
./node_modules/.bin/pgdev stop "$NAME" >/dev/null

begin=$(now_ms)
./node_modules/.bin/pgdev start "$NAME" >/dev/null
echo "second start (pgdev start): ready in $(( $(now_ms) - begin )) ms"
./node_modules/.bin/pgdev stop "$NAME" >/dev/null

(( first_line_ms <= SILENCE_LIMIT_S * 1000 )) || fail "the first start printed nothing for ${first_line_ms} ms (limit ${SILENCE_LIMIT_S} s)"
(( total_ms <= START_LIMIT_S * 1000 )) || fail "the first start took ${total_ms} ms (limit ${START_LIMIT_S} s)"
echo "check-packed-install: ok (whole check $(( $(now_ms) - started )) ms)"
