#!/usr/bin/env bash
# What a flood of refused logins does to the staff: the people list measured idle and
# while one client sends wrong passwords at 400 requests a second, and the audit rows
# the flood leaves behind.
#
#   benches/login-flood.sh [PEOPLE]          (default 100000; needs wrk, psql, python3)
#   BIN=/path/to/gdpr-register benches/login-flood.sh   another build, to compare
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${1:-100000}
PORT=18090
DURATION=20
RATE=400
for tool in wrk psql python3 curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk postgresql-client python3 curl)"; exit 2; }
done

if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=$PWD/target/release/gdpr-register
fi
DATA=$(mktemp -d /tmp/gdpr-flood-XXXX)
chmod 755 "$DATA"
export DATA_DIR=$DATA LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn
"$BIN" serve 2>"$DATA/server.log" &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done

"$BIN" demo-data --people "$PEOPLE" >/dev/null
echo "bench-password-long" | "$BIN" user add --email bench@btb.test --name Bench --role employee >/dev/null
echo "bench-password-long" | "$BIN" user add --email victim@btb.test --name Victim --role employee >/dev/null

JAR=$DATA/cookies
TOKEN=$(curl -fs -c "$JAR" -b "$JAR" "http://127.0.0.1:$PORT/login" | grep -o 'name="csrf-token" content="[^"]*' | cut -d'"' -f4)
curl -fs -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "email=bench@btb.test" \
  --data-urlencode "password=bench-password-long" --data-urlencode "csrf_token=$TOKEN" "http://127.0.0.1:$PORT/login"
COOKIE=$(awk '$6 == "gdpr_session" { print "gdpr_session=" $7 }' "$JAR")

cat > "$DATA/p99.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
people_list() {
  wrk -t2 -c8 -d"${DURATION}s" -H "Cookie: $COOKIE" -s "$DATA/p99.lua" "http://127.0.0.1:$PORT/people" | grep RESULT
}
SOCKET=$(readlink -f "$DATA/postgres")
audit_rows() {
  psql -h "$SOCKET" -U postgres -Atc "SELECT count(*) FROM audit_log" gdpr_register
}

echo "== people list, idle:              $(people_list)"
BEFORE=$(audit_rows)
python3 benches/login_flood.py "http://127.0.0.1:$PORT" "$RATE" "$((DURATION + 2))" > "$DATA/flood" &
FLOOD=$!
sleep 1
echo "== people list, under the flood:   $(people_list)"
wait $FLOOD
sleep 2
echo "== the flood:                      $(grep RESULT "$DATA/flood")"
echo "== audit rows written by it:       $(( $(audit_rows) - BEFORE ))"
