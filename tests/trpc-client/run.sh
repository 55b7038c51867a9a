#!/usr/bin/env bash
# Compatibility test: drives a real Tidings server with the real @trpc/client v11
# (httpLink, httpBatchLink, and httpSubscriptionLink with the eventsource package; superjson
# transformer). See README.md beside this file.
#
#   tests/trpc-client/run.sh            # builds target/debug/tidings if missing
#   TIDINGS_BIN=/path/to/tidings tests/trpc-client/run.sh
#
# Prints one line per check and a final `N passed, M failed`; exits non-zero on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

log() { printf '[run.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v node >/dev/null || die "node is required (v20 or newer)"
command -v npm >/dev/null || die "npm is required"
command -v curl >/dev/null || die "curl is required"

TMP=""
SERVER_PID=""
NODE_PID=""
cleanup() {
  local status=$?
  if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    # Give it a moment to exit cleanly, then insist.
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$TMP" && -d "$TMP" ]]; then
    if [[ $status -ne 0 && -f "$TMP/server.log" ]]; then
      log "server log (last 40 lines):"
      tail -n 40 "$TMP/server.log" >&2 || true
    fi
    rm -rf "$TMP"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The pinned client packages.
log "npm ci"
(cd "$HERE" && npm ci --silent --no-audit --no-fund >/dev/null) || die "npm ci failed"

# 2. The binary.
if [[ -n "${TIDINGS_BIN:-}" ]]; then
  BIN="$TIDINGS_BIN"
  [[ -x "$BIN" ]] || die "TIDINGS_BIN=$BIN is not an executable file"
else
  BIN="$ROOT/target/debug/tidings"
  if [[ ! -x "$BIN" ]]; then
    log "building tidings (cargo build -p tidings-gateway)"
    (cd "$ROOT" && cargo build --quiet -p tidings-gateway) || die "cargo build failed"
  fi
  [[ -x "$BIN" ]] || die "no binary at $BIN after the build"
fi
log "binary: $BIN"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/tidings-trpc-client.XXXXXX")"

# Only the settings this test chooses reach the binary.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^TIDINGS_' | grep -v '^TIDINGS_BIN$' || true)
export TIDINGS_DATABASE_URL="sqlite://$TMP/tidings.db?mode=rwc"
export RUST_LOG="${RUST_LOG:-info}"

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); });'
}

json_field() { # json_field FIELD JSON -> the string field's value
  node -e 'const v = JSON.parse(process.argv[2])[process.argv[1]]; if (typeof v !== "string") process.exit(1); process.stdout.write(v);' "$1" "$2"
}

# 3. Accounts and a service key, through the CLI.
ALICE_EMAIL="alice@example.com"; ALICE_PASSWORD="alice-secret-1"
BOB_EMAIL="bob@example.com";     BOB_PASSWORD="bob-secret-22"
ALICE_JSON="$("$BIN" users create --email "$ALICE_EMAIL" --password "$ALICE_PASSWORD" --name Alice 2>>"$TMP/cli.log")" \
  || die "users create (alice) failed: $(cat "$TMP/cli.log")"
BOB_JSON="$("$BIN" users create --email "$BOB_EMAIL" --password "$BOB_PASSWORD" --name Bob 2>>"$TMP/cli.log")" \
  || die "users create (bob) failed: $(cat "$TMP/cli.log")"
SERVICE_KEY="$("$BIN" keys create --name trpc-client-compat 2>>"$TMP/cli.log")" \
  || die "keys create failed: $(cat "$TMP/cli.log")"
ALICE_ID="$(json_field id "$ALICE_JSON")" || die "no id in: $ALICE_JSON"
BOB_ID="$(json_field id "$BOB_JSON")" || die "no id in: $BOB_JSON"
[[ -n "$SERVICE_KEY" ]] || die "keys create printed no key"

# 4. The server, on a free port (retried if another process takes the port first).
PORT=""
for attempt in 1 2 3 4 5; do
  PORT="$(free_port)"
  TIDINGS_LISTEN="127.0.0.1:$PORT" "$BIN" serve >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    if curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; then break 2; fi
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    die "server did not become ready on port $PORT"
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  log "server exited at start (attempt $attempt): $(tail -n 1 "$TMP/server.log")"
done
[[ -n "$SERVER_PID" ]] || die "could not start the server"
BASE="http://127.0.0.1:$PORT"
log "server pid $SERVER_PID at $BASE"

# 5. Notifications through the service key: for each user, an array of 7 records, then one more
#    record alone (so both input forms of notifications.create are used).
create() { # create JSON_INPUT -> the whole tRPC response body
  local out
  out="$(curl -sS -X POST "$BASE/api/trpc/notifications.create" \
    -H "authorization: Bearer $SERVICE_KEY" -H 'content-type: application/json' \
    --data-binary "{\"json\":$1}")" || die "notifications.create: curl failed"
  [[ "$out" == '{"result":'* ]] || die "notifications.create failed: $out"
  printf '%s' "$out"
}
batch_for() { # batch_for USER_ID
  cat <<EOF
[
  {"recipient":"$1","subject":"Ticket created","message":"Ticket #1001 was created","type":"ticketCreated","data":{"ticketId":"t-1001"}},
  {"recipient":"$1","subject":"Ticket Assigned","message":"You've been assigned ticket #1234: Customer login issue","type":"ticketAssigned","data":{"ticketId":"ticket-uuid","ticketNumber":1234}},
  {"recipient":"$1","subject":"New comment","message":"Someone commented","type":"newComment"},
  {"recipient":"$1","subject":"You were mentioned","message":"@john mentioned you in ticket #1230","type":"mentions","data":{"ticketId":"ticket-uuid-2","conversationId":"conv-uuid"}},
  {"recipient":"$1","subject":"SLA warning","message":"Ticket #1240 breaches its SLA in 1 h","type":"slaWarning","data":{"nested":{"list":[1,2.5,{"deep":null}],"flag":true},"text":"h\u00e9llo \u2713 \"quoted\""}},
  {"recipient":"$1","subject":"Weekly report","message":"Your week in numbers","type":"weeklyReport"},
  {"recipient":"$1","subject":"SLA breached","message":"Ticket #1250 breached its SLA","type":"slaBreach","data":{"ticketNumber":1250,"late":true}}
]
EOF
}
single_for() { # single_for USER_ID
  printf '{"recipient":"%s","subject":"Ticket resolved","message":"Ticket #1001 was resolved","type":"ticketResolved","data":{"ticketId":"t-1001","resolution":"fixed"}}' "$1"
}
ALICE_BATCH="$(create "$(batch_for "$ALICE_ID")")"
ALICE_SINGLE="$(create "$(single_for "$ALICE_ID")")"
BOB_BATCH="$(create "$(batch_for "$BOB_ID")")"
BOB_SINGLE="$(create "$(single_for "$BOB_ID")")"

cat >"$TMP/fixtures.json" <<EOF
{
  "baseUrl": "$BASE",
  "serviceKey": "$SERVICE_KEY",
  "users": [
    {"email": "$ALICE_EMAIL", "password": "$ALICE_PASSWORD", "user": $ALICE_JSON,
     "created": [$ALICE_BATCH, $ALICE_SINGLE]},
    {"email": "$BOB_EMAIL", "password": "$BOB_PASSWORD", "user": $BOB_JSON,
     "created": [$BOB_BATCH, $BOB_SINGLE]}
  ]
}
EOF

# 6. The client tests.
log "node test.mjs"
# In the background and waited for, so that a signal to this script is handled at once.
(cd "$HERE" && TIDINGS_FIXTURES="$TMP/fixtures.json" exec node test.mjs) &
NODE_PID=$!
set +e
wait "$NODE_PID"
STATUS=$?
set -e
NODE_PID=""
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  log "the server died during the tests"
  STATUS=1
fi
exit "$STATUS"
