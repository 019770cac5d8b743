#!/usr/bin/env bash
# The whole product on this machine: services, database migrations, the Temporal worker, the Kafka
# ingress and the demo org. `npm start` runs `up`; `npm stop` runs `down`.
#
#   services/app.sh up        install what is missing, start everything, load the demo org
#   services/app.sh down      stop the worker, the ingress, the relay and every service
#   services/app.sh status    what runs, and where
#   services/app.sh deps      install npm packages and generate the Prisma client (used by test.sh too)
#   services/app.sh cli ...   the CLI (workers/cli.ts) with the local payload key (npm run cli)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
RUN_DIR=$REPO_ROOT/.stack/run
LOG_DIR=$REPO_ROOT/.stack/logs
STACK=$SCRIPT_DIR/stack.sh
PROCESSES=(worker ingress relay codec-server)
KEY_FILE=$REPO_ROOT/.stack/payload-encryption.key
APP_DB_PASSWORD_FILE=$REPO_ROOT/.stack/database-app.password   # made by services/stack.sh

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# npm packages (only when the lockfile changed) and the generated Prisma client.
deps() {
  cd "$REPO_ROOT"
  if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    say "==> installing npm packages (npm ci)"
    npm ci --no-audit --no-fund
  fi
  if [[ ! -f prisma/client/client.ts || prisma/schema.prisma -nt prisma/client/client.ts ]]; then
    say "==> generating the Prisma client"
    npx prisma generate >/dev/null
  fi
}

entry_of() {
  case $1 in
    worker) echo "$REPO_ROOT/workers/temporal-worker.ts" ;;
    ingress) echo "$REPO_ROOT/workers/kafka-ingress.ts" ;;
    relay) echo "$REPO_ROOT/workers/outbox-relay-process.ts" ;;
    codec-server) echo "$REPO_ROOT/workers/codec-server.ts" ;;
  esac
}

# Temporal payloads are encrypted. Without PAYLOAD_ENCRYPTION_KEY in the environment, a local key is
# made once and kept in .stack (git-ignored); production sets its own key (README, "Payload encryption").
payload_key() {
  if [[ -n ${PAYLOAD_ENCRYPTION_KEY:-} ]]; then return 0; fi
  if [[ ! -s $KEY_FILE ]]; then
    mkdir -p "$(dirname "$KEY_FILE")"
    (umask 077 && node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64"))' >"$KEY_FILE")
    say "==> made a local payload encryption key in .stack/payload-encryption.key"
  fi
  PAYLOAD_ENCRYPTION_KEY=$(cat "$KEY_FILE")
  export PAYLOAD_ENCRYPTION_KEY
}

# Two database roles (README, "Database roles"): the migrations run as the owner
# (MIGRATION_DATABASE_URL), the processes connect as the application role (DATABASE_URL), which may
# not alter, truncate or rewrite the audit trail and the request history. Without DATABASE_URL, the
# local application role's password is the one services/stack.sh made once in .stack (git-ignored).
# A DATABASE_URL alone is one role for everything, as before the roles were split.
database_urls() {
  MIGRATION_DATABASE_URL=${MIGRATION_DATABASE_URL:-${DATABASE_URL:-postgresql://selfservice:selfservice@127.0.0.1:5433/selfservice}}
  if [[ -z ${DATABASE_URL:-} ]]; then
    [[ -s $APP_DB_PASSWORD_FILE ]] || die "no DATABASE_URL and no $APP_DB_PASSWORD_FILE: start the services (npm start) or set DATABASE_URL"
    local rest=${MIGRATION_DATABASE_URL#*://}
    DATABASE_URL="postgresql://selfservice_app:$(cat "$APP_DB_PASSWORD_FILE")@${rest#*@}"
  fi
  export DATABASE_URL
  export -n MIGRATION_DATABASE_URL   # the owner's URL goes to the migrations only, never to a process
}

# The codec server shows decrypted payloads, so it verifies its callers (README, "Payload encryption").
# Locally it runs on 127.0.0.1 with a static token, made once and kept in .stack (git-ignored); the Web UI
# sends it as a cookie after http://127.0.0.1:8888/login (password: the token). Production sets
# CODEC_AUTH=jwt and its issuer instead.
CODEC_TOKEN_FILE=$REPO_ROOT/.stack/codec-token
codec_token() {
  if [[ ${CODEC_AUTH:-static} != static || -n ${CODEC_STATIC_TOKEN:-} ]]; then return 0; fi
  if [[ ! -s $CODEC_TOKEN_FILE ]]; then
    mkdir -p "$(dirname "$CODEC_TOKEN_FILE")"
    (umask 077 && node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64url"))' >"$CODEC_TOKEN_FILE")
    say "==> made a local codec server token in .stack/codec-token"
  fi
  CODEC_STATIC_TOKEN=$(cat "$CODEC_TOKEN_FILE")
  export CODEC_STATIC_TOKEN
}

running_pid() { # process -> pid of this clone's process, if it runs
  local f=$RUN_DIR/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(entry_of "$1")" && { echo "$pid"; return 0; }
  rm -f "$f"
  return 1
}

start_process() { # worker|ingress; waits for the line the process prints when it is ready
  local name=$1 ready=$2 log=$LOG_DIR/$1.log pid i
  if pid=$(running_pid "$name"); then say "$name: already running (pid $pid)"; return 0; fi
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  : >"$log"
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the child bash
  # The child closes every descriptor it inherited beyond stdio, so no caller's pipe stays open.
  (cd "$REPO_ROOT" && setsid nohup bash -c 'echo $$ >"$0"; for fd in /proc/$$/fd/*; do n=${fd##*/}; ((n > 2)) && eval "exec $n>&-"; done; exec "$@"' \
    "$RUN_DIR/$name.pid" node "$REPO_ROOT/node_modules/tsx/dist/cli.mjs" "$(entry_of "$name")" >>"$log" 2>&1 </dev/null &)
  for ((i = 0; i < 600; i++)); do
    grep -q "$ready" "$log" 2>/dev/null && { say "$name: ready (pid $(cat "$RUN_DIR/$name.pid"), log .stack/logs/$name.log)"; return 0; }
    if ((i > 20)) && ! running_pid "$name" >/dev/null; then
      tail -n 20 "$log" >&2
      die "$name exited during startup; its log is $log"
    fi
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  die "$name not ready after 120 s; its log is $log"
}

stop_process() {
  local pid i
  if ! pid=$(running_pid "$1"); then say "$1: not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do running_pid "$1" >/dev/null || break; sleep 0.2; done
  if running_pid "$1" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$RUN_DIR/$1.pid"
  say "$1: stopped"
}

up() {
  deps
  payload_key
  bash "$STACK" start
  database_urls
  say "==> applying database migrations (as the owner role, MIGRATION_DATABASE_URL)"
  local output
  output=$(cd "$REPO_ROOT" && MIGRATION_DATABASE_URL=$MIGRATION_DATABASE_URL npx prisma migrate deploy 2>&1) || { printf '%s\n' "$output" >&2; die "database migrations failed"; }
  start_process worker 'worker: polling'
  start_process ingress 'ingress: consuming'
  start_process relay 'relay: publishing'
  codec_token
  start_process codec-server 'codec-server: listening'
  say "==> loading the demo org (services/demo-org.json)"
  (cd "$REPO_ROOT" && npx tsx workers/cli.ts import services/demo-org.json | tail -n 1)
  cat <<EOF

Self Service backend is running.
  Temporal Web UI   http://127.0.0.1:8233   (every request is a workflow: app-request-<requestId>;
                                            payloads are encrypted, the UI decodes them through :8888:
                                            sign in once at http://127.0.0.1:8888/login with the token in
                                            .stack/codec-token, then turn on "include cross-origin
                                            credentials" in the UI's codec server settings)
  Mailpit (emails)  http://127.0.0.1:8025   (API: /api/v1/messages)
  Kafka             127.0.0.1:9092          (topics selfservice.*.v1)
Try it:   npm run cli -- available-apps org-acme
          npm run cli -- send selfservice.app.requested.v1 '{"orgId":"org-acme","userId":"u-alice","appId":"app-expenses","comment":"for the offsite"}'
Stop it:  npm stop
EOF
}

down() {
  for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do stop_process "${PROCESSES[i]}"; done
  bash "$STACK" stop
}

status() {
  local name pid
  for name in "${PROCESSES[@]}"; do
    if pid=$(running_pid "$name"); then printf '%-9s running  pid %s\n' "$name" "$pid"; else printf '%-9s stopped\n' "$name"; fi
  done
  bash "$STACK" status
}

case ${1:-help} in
  up) up ;;
  cli) shift; payload_key; database_urls; cd "$REPO_ROOT" && exec npx tsx workers/cli.ts "$@" ;;
  down) down ;;
  status) status ;;
  deps) deps ;;
  *) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ ${1:-help} == help ]] || exit 2 ;;
esac
