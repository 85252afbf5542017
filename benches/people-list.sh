#!/usr/bin/env bash
# The people list under load, against the same SQL run by pgbench on the same machine.
#
#   benches/people-list.sh [PEOPLE]        (default 1000000; needs wrk and pgbench)
#
# Builds the release binary, starts it on a private cluster in a fresh folder, fills it
# with demo data, logs in, then measures for 20 s each: the people list (50 rows), a
# search for a three-letter term, and pgbench running the list's query directly.
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${1:-1000000}
PORT=18089
DURATION=20s
CONNECTIONS=8
for tool in wrk pgbench curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk postgresql-client curl)"; exit 2; }
done

cargo build --release -q
BIN=$PWD/target/release/gdpr-register
DATA=$(mktemp -d /tmp/gdpr-bench-XXXX)
chmod 755 "$DATA"
export DATA_DIR=$DATA LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn
"$BIN" serve 2>"$DATA/server.log" &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done

echo "== demo data"
"$BIN" demo-data --people "$PEOPLE"
echo "bench-password-long" | "$BIN" user add --email bench@btb.test --name Bench --role employee >/dev/null

# Log in like a browser: the login page's CSRF token, then the form.
JAR=$DATA/cookies
TOKEN=$(curl -fs -c "$JAR" -b "$JAR" "http://127.0.0.1:$PORT/login" | grep -o 'name="csrf-token" content="[^"]*' | cut -d'"' -f4)
curl -fs -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "email=bench@btb.test" \
  --data-urlencode "password=bench-password-long" --data-urlencode "csrf_token=$TOKEN" "http://127.0.0.1:$PORT/login"
COOKIE=$(awk '$6 == "gdpr_session" { print "gdpr_session=" $7 }' "$JAR")

cat > "$DATA/p95.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f rps=%.0f errors=%d\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6), summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

measure() {
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -H "Cookie: $COOKIE" -s "$DATA/p95.lua" "http://127.0.0.1:$PORT$1" | grep RESULT
}
echo "== people list (50 rows):           $(measure /people)"
echo "== search for a three-letter term:  $(measure '/people?q=ber')"

# The SQL the list page runs, as pgbench runs it: the session, the user, the list itself
# (first page, no search).
SESSION_ID=${COOKIE#gdpr_session=}
SOCKET=$(readlink -f "$DATA/postgres")
USER_ID=$(psql -h "$SOCKET" -U postgres -Atc "SELECT id FROM users WHERE email = 'bench@btb.test'" gdpr_register)
cat > "$DATA/list.sql" <<'SQL'
SELECT c.id, c.name, c.email, c.phone, c.company_id, co.name AS company_name, c.status, lower(c.name)
FROM contacts c JOIN companies co ON co.id = c.company_id
WHERE ('' = '' OR c.search LIKE search_text(''))
  AND c.search LIKE ALL (SELECT search_text(p) FROM unnest('{}'::text[]) AS p)
  AND CASE '' WHEN '' THEN c.status <> 'quarantine' ELSE c.status = '' END
  AND (NULL::uuid IS NULL OR c.company_id = NULL::uuid)
  AND (NULL::text IS NULL OR (lower(c.name), c.id) > (NULL::text, NULL::uuid))
ORDER BY lower(c.name), c.id
LIMIT 51;
SQL
{
  echo "SELECT data FROM tower_sessions.session WHERE id = '$SESSION_ID' AND expiry_date > now();"
  echo "SELECT * FROM users WHERE id = '$USER_ID';"
  cat "$DATA/list.sql"
} > "$DATA/page.sql"
pgbench_tps() {
  pgbench -n -h "$SOCKET" -U postgres -c "$CONNECTIONS" -j 2 -T "${DURATION%s}" -f "$1" gdpr_register 2>/dev/null \
    | awk '/^tps/ { printf "%.0f", $3 }'
}
echo "== pgbench, the page's SQL:         tps=$(pgbench_tps "$DATA/page.sql") (session, user, list)"
echo "== pgbench, the list query alone:   tps=$(pgbench_tps "$DATA/list.sql")"
echo "== server resident memory:          $(ps -o rss= -p $SERVER | awk '{ printf "%.1f MiB", $1 / 1024 }')"
