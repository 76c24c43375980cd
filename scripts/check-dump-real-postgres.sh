#!/usr/bin/env bash
# Checks that a pgdev dump loads into a real Postgres: Debian's `postgresql` (installed with apt-get if missing, which
# needs root), in a throwaway cluster run by a non-root user on a free port, removed afterwards.
#
#   npm run check:dump-real-postgres                         # the dump as pgdev writes it
#   DUMP_ARGS='--target-version 15' npm run check:dump-real-postgres
#
# It loads examples/prisma's schema with seed rows and test/fixtures/rich-schema.sql into a pgdev server, dumps it,
# loads the dump with `psql -v ON_ERROR_STOP=1` into the real server, and compares the two: relations, columns,
# constraints, indexes, triggers, functions, every table's rows and every sequence's position.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
PG_BIN=$(pg_bin)
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "check-dump-real-postgres: Debian's postgresql is not installed; run as root, or: sudo apt-get install postgresql" >&2
    exit 1
  fi
  echo "installing Debian's postgresql..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PG_BIN=$(pg_bin)
fi
[ -f dist/cli/main.bundle.js ] || npm run build

WORK=$(mktemp -d)
chmod 755 "$WORK"
export XDG_DATA_HOME="$WORK/data" PGTZ=UTC
PGDEV=(node bin/pgdev.js)
# Postgres refuses to run as root: the cluster belongs to the `postgres` user Debian's package creates.
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); else RUN_AS=(); fi

cleanup() {
  [ -f "$WORK/cluster/postmaster.pid" ] && "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/cluster" -m immediate stop >/dev/null 2>&1 || true
  "${PGDEV[@]}" stop check >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"${PGDEV[@]}" -n check -d -p 0 -P 0 --shadow-db-port 0 >/dev/null
"${PGDEV[@]}" load check examples/prisma/migrations/0001_init.sql >/dev/null
"${PGDEV[@]}" load check test/fixtures/rich-schema.sql >/dev/null
"${PGDEV[@]}" load check - >/dev/null <<'SQL'
INSERT INTO users (email, name, created_at) VALUES ('ann@example.com', 'Ann', '2024-01-02 03:04:05.678+00'), ('bob@example.com', 'Bob', now());
INSERT INTO posts (title, published, author_id) VALUES ('Hello', true, 1), ('Draft', false, 1), ('Gone', false, 2);
DELETE FROM posts WHERE title = 'Gone';
INSERT INTO rich.books (author_id, title, scores, meta) SELECT 1 + g % 2, 'Book ' || g, ARRAY[g, g * 2], jsonb_build_object('g', g) FROM generate_series(1, 1000) g;
SQL
# shellcheck disable=SC2086
"${PGDEV[@]}" dump check -f "$WORK/dump.sql" ${DUMP_ARGS:-}
PGDEV_URL=$("${PGDEV[@]}" url check)

PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
mkdir -p "$WORK/socket" "$WORK/cluster" && chmod 777 "$WORK/socket"
[ "$(id -u)" = 0 ] && chown postgres "$WORK/cluster"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$WORK/cluster" -U postgres -A trust --no-sync >/dev/null
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/cluster" -l "$WORK/cluster/postgres.log" -w \
  -o "-p $PORT -k $WORK/socket -c listen_addresses=''" start >/dev/null
REAL=(-h "$WORK/socket" -p "$PORT" -U postgres -d postgres)
VERSION=$(psql "${REAL[@]}" -Atc 'SHOW server_version')
echo "pgdev dump ($(wc -c <"$WORK/dump.sql") bytes${DUMP_ARGS:+, $DUMP_ARGS}) into Postgres $VERSION on port $PORT:"

if ! psql "${REAL[@]}" -X -q -v ON_ERROR_STOP=1 -f "$WORK/dump.sql" >"$WORK/load.log" 2>&1; then
  echo "FAILED: the dump does not load:" >&2
  cat "$WORK/load.log" >&2
  exit 1
fi

describe() {
  psql "$@" -X -At -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'relation ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'rich') ORDER BY 1;
SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') || ' ' || is_identity FROM information_schema.columns WHERE table_schema IN ('public', 'rich') ORDER BY 1;
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace::regnamespace::text IN ('public', 'rich') AND contype <> 'n' ORDER BY 1;
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index JOIN pg_class c ON c.oid = indexrelid WHERE c.relnamespace::regnamespace::text IN ('public', 'rich') ORDER BY 1;
SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1;
SELECT 'function ' || oid::regprocedure || ' ' || md5(regexp_replace(prosrc, '\s+', ' ', 'g')) FROM pg_proc WHERE pronamespace::regnamespace::text IN ('public', 'rich') ORDER BY 1;
SELECT 'comment ' || objoid::regclass || ' ' || objsubid || ' ' || description FROM pg_description WHERE classoid = 'pg_class'::regclass AND objoid::regclass::text LIKE 'rich.%' ORDER BY 1;
SELECT 'enum ' || enumtypid::regtype || ' ' || string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum GROUP BY enumtypid ORDER BY 1;
SELECT 'sequence ' || schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, 'unused') FROM pg_sequences ORDER BY 1;
SELECT format('SELECT %L || '' '' || md5(coalesce(string_agg(x::text, E''\n'' ORDER BY x::text), '''')) || '' '' || count(*) FROM %I.%I x', 'rows ' || schemaname || '.' || tablename, schemaname, tablename)
  FROM pg_tables WHERE schemaname IN ('public', 'rich') ORDER BY 1 \gexec
SELECT 'view ' || rich.book_count(1) || ' ' || (SELECT string_agg(name || '=' || books, ',' ORDER BY name) FROM rich.author_books);
SQL
}
describe "$PGDEV_URL" >"$WORK/pgdev.txt"
describe "${REAL[@]}" >"$WORK/real.txt"
if ! diff -u "$WORK/pgdev.txt" "$WORK/real.txt" >"$WORK/diff.txt"; then
  echo "FAILED: the databases differ (- pgdev, + Postgres $VERSION):" >&2
  cat "$WORK/diff.txt" >&2
  exit 1
fi
echo "ok: the same $(grep -c '^relation' "$WORK/pgdev.txt") relations, $(grep -c '^function' "$WORK/pgdev.txt") functions, $(grep -c '^rows' "$WORK/pgdev.txt") tables of rows and $(grep -c '^sequence' "$WORK/pgdev.txt") sequences"
