#!/usr/bin/env bash
# Chat relay with many visitors connected at once and one operator answering every
# message: p50 / p99 / max from a visitor's send to the console, and from the operator's
# answer to the visitor (see benches/chat_relay.py).
#
#   benches/chat-relay.sh [VISITORS] [SECONDS]   (default 500 and 30; needs python3, curl)
#   BIN=/path/to/gdpr-register benches/chat-relay.sh   another build, to compare
set -euo pipefail
cd "$(dirname "$0")/.."
VISITORS=${1:-500}
SECONDS_MEASURED=${2:-30}
PORT=18091
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool"; exit 2; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=$PWD/target/release/gdpr-register
fi
ulimit -n 4096 2>/dev/null || true
DATA=$(mktemp -d /tmp/gdpr-chat-XXXX)
chmod 755 "$DATA"
# Every visitor comes from an address of its own (X-Forwarded-For), as behind a proxy:
# the per-address caps on new chats would otherwise stop the bench at three.
export DATA_DIR=$DATA LISTEN_ADDR=127.0.0.1:$PORT RUST_LOG=warn TRUST_PROXY=true
unset DATABASE_URL SMTP_URL
"$BIN" serve 2>"$DATA/server.log" &
SERVER=$!
trap 'kill -INT $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done

echo "bench-password-long" | "$BIN" user add --email operator@btb.test --name Operator --role employee --chat-operator >/dev/null
JAR=$DATA/cookies
TOKEN=$(curl -fs -c "$JAR" -b "$JAR" "http://127.0.0.1:$PORT/login" | grep -o 'name="csrf-token" content="[^"]*' | cut -d'"' -f4)
curl -fs -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "email=operator@btb.test" \
  --data-urlencode "password=bench-password-long" --data-urlencode "csrf_token=$TOKEN" "http://127.0.0.1:$PORT/login"
COOKIE=$(awk '$6 == "gdpr_session" { print "gdpr_session=" $7 }' "$JAR")

python3 benches/chat_relay.py "http://127.0.0.1:$PORT" "$COOKIE" "$VISITORS" "$SECONDS_MEASURED"
