#!/usr/bin/env bash
# How fast a campaign leaves, against postfix's smtp-sink, beside smtp-source against the
# same sink; and how well a paced campaign keeps its rate.
#
#   benches/newsletter-send.sh [RECIPIENTS] [PACED_RECIPIENTS]   (default 20000 3000)
#
# Builds the release binary, starts it on a private cluster in a fresh folder, adds
# RECIPIENTS subscribers, then: smtp-source sends RECIPIENTS 4 KiB messages over one
# connection and over as many as the application uses (SMTP_CONNECTIONS, default 8); the
# application sends a campaign with a 4 KiB body to all of them with the rate limit off,
# then one at 100 mails a second to PACED_RECIPIENTS of them. Prints each rate and the
# server's largest resident memory while sending.
# Needs postfix's smtp-sink and smtp-source (apt-get install postfix), psql and curl.
# `BIN=/path/to/gdpr-register benches/newsletter-send.sh` measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
PACED=${2:-3000}
CONNECTIONS=${SMTP_CONNECTIONS:-8}
PORT=18090
SINK_PORT=18025
for tool in /usr/sbin/smtp-sink /usr/sbin/smtp-source psql curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install postfix postgresql-client curl)"; exit 2; }
done

if [ -z "${BIN:-}" ]; then
  cargo build --release -q
  BIN=$PWD/target/release/gdpr-register
fi
DATA=$(mktemp -d /tmp/gdpr-news-bench-XXXX)
chmod 755 "$DATA"

/usr/sbin/smtp-sink -u nobody 127.0.0.1:$SINK_PORT 1000 &
SINK=$!
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill -INT "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  kill "$SINK" 2>/dev/null
  rm -rf "$DATA"
}
trap cleanup EXIT
sleep 0.5

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
source_run() {
  local start end
  start=$(date +%s.%N)
  /usr/sbin/smtp-source -s "$1" -l 4096 -m "$N" -f bench@btb.fi -t kund@kund.test 127.0.0.1:$SINK_PORT
  end=$(date +%s.%N)
  rate "$N" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
}
echo "== smtp-source, $N messages of 4 KiB"
echo "one connection: $(source_run 1) messages/s"
echo "$CONNECTIONS connections: $(source_run "$CONNECTIONS") messages/s"

export DATA_DIR=$DATA LISTEN_ADDR=127.0.0.1:$PORT SMTP_URL=smtp://127.0.0.1:$SINK_PORT RUST_LOG=warn
export SMTP_CONNECTIONS=$CONNECTIONS
"$BIN" serve 2>"$DATA/server.log" &
SERVER=$!
until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.2; done
SOCKET=$(readlink -f "$DATA/postgres")
sql() { psql -h "$SOCKET" -U postgres -d gdpr_register -Atqc "$1"; }

echo "bench-password-long" | "$BIN" user add --email bench@btb.fi --name Bench --role admin >/dev/null
sql "INSERT INTO companies (id, name) VALUES ('00000000-0000-4000-8000-00000000b0b0', 'Kund Ab');
     INSERT INTO contacts (id, company_id, name, email, language, source, status, newsletter, confirmed_at)
     SELECT gen_random_uuid(), '00000000-0000-4000-8000-00000000b0b0', 'Kund ' || n,
            'kund' || n || '@kund.test', (ARRAY['sv','fi','en'])[1 + n % 3], 'fair', 'active', true, now()
     FROM generate_series(1, $N) AS n"

# Log in like a browser: the login page's CSRF token, then the form.
JAR=$DATA/cookies
token() { curl -fs -c "$JAR" -b "$JAR" "http://127.0.0.1:$PORT$1" | grep -o 'name="csrf-token" content="[^"]*' | cut -d'"' -f4; }
TOKEN=$(token /login)
curl -fs -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "email=bench@btb.fi" \
  --data-urlencode "password=bench-password-long" --data-urlencode "csrf_token=$TOKEN" "http://127.0.0.1:$PORT/login"
BODY=$(for i in $(seq 1 40); do echo "Paragraph $i of the autumn news: our transformers, **ready** for the grid of tomorrow."; echo; done)
BODY=${BODY:0:4096}

# Sends a campaign to everyone in the languages given at PER_SECOND (empty: off), and
# prints its rate and the server's largest RSS while it was sent.
campaign() {
  local per_second=$1; shift
  TOKEN=$(token /campaigns/new)
  local args=(--data-urlencode "subject=Autumn news" --data-urlencode "body=$BODY"
              --data-urlencode "per_second=$per_second" --data-urlencode "csrf_token=$TOKEN")
  for lang in "$@"; do args+=(--data-urlencode "language=$lang"); done
  local location
  location=$(curl -fs -o /dev/null -w '%{redirect_url}' -c "$JAR" -b "$JAR" "${args[@]}" "http://127.0.0.1:$PORT/campaigns/new")
  local id=${location##*/}
  TOKEN=$(token "/campaigns/$id")
  local rss=0 left=1 current
  curl -fs -o /dev/null -c "$JAR" -b "$JAR" --data-urlencode "send_at=" --data-urlencode "csrf_token=$TOKEN" \
    "http://127.0.0.1:$PORT/campaigns/$id/send"
  while [ "$left" != 0 ]; do
    current=$(awk '/VmRSS/ { print $2 }' "/proc/$SERVER/status")
    [ "$current" -gt "$rss" ] && rss=$current
    left=$(sql "SELECT count(*) FROM mail_outbox o JOIN newsletter_campaigns c ON c.batch_id = o.batch_id
                WHERE c.id = '$id' AND o.status IN ('queued', 'sending')")
    sleep 0.5
  done
  sql "SELECT count(*) || ' mails in ' || round(extract(epoch FROM max(o.sent_at) - min(o.sent_at))::numeric, 1)
              || ' s: ' || round(count(*) / extract(epoch FROM max(o.sent_at) - min(o.sent_at))::numeric) || ' mails/s'
       FROM mail_outbox o JOIN newsletter_campaigns c ON c.batch_id = o.batch_id
       WHERE c.id = '$id' AND o.status = 'sent'"
  echo "largest RSS of the server while sending: $((rss / 1024)) MB"
}

echo "== the application, $N recipients, rate limit off"
campaign ""
# The paced run goes to one language: a third of the subscribers, at most PACED.
sql "UPDATE contacts SET newsletter = false WHERE language = 'sv' AND id NOT IN
       (SELECT id FROM contacts WHERE language = 'sv' ORDER BY id LIMIT $PACED)"
echo "== the application, 100 mails a second"
campaign 100 sv
