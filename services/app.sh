#!/usr/bin/env bash
# The whole product on this machine: services, database migrations, the Temporal worker, the Kafka
# ingress and the demo org. `npm start` runs `up`; `npm stop` runs `down`.
#
#   services/app.sh up        install what is missing, build, start everything, load the demo org
#   services/app.sh down      stop the worker, the ingress, the relay, the codec server and every service
#   services/app.sh status    what runs, and where
#   services/app.sh deps      install npm packages and generate the Prisma client (used by test.sh too)
#   services/app.sh build     compile to dist/ when a source is newer than the last build (npm run build always does)
#   services/app.sh processes-down   stop the four processes only (and anything of this clone left of them)
#   services/app.sh start|stop NAME  start (built, as `up` does) or stop one of worker, ingress, relay, codec-server
#   services/app.sh cli ...   the CLI (workers/cli.ts) with the local payload key (npm run cli)
#
# Each process runs as compiled JavaScript, `node dist/workers/<entry>.js`, one OS process: the pid in
# .stack/run/<name>.pid is the node process that does the work (no loader, no wrapper shell), so a
# signal sent to it (by `npm stop`, systemd, Kubernetes) reaches the process that polls and consumes.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
DEFAULT_RUN_DIR=$REPO_ROOT/.stack/run
# APP_RUN_DIR and APP_LOG_DIR are for tests that start processes beside a running stack (test/integration/process-lifecycle.test.ts).
RUN_DIR=${APP_RUN_DIR:-$DEFAULT_RUN_DIR}
LOG_DIR=${APP_LOG_DIR:-$REPO_ROOT/.stack/logs}
DIST=$REPO_ROOT/dist
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

source_of() { # process -> its entry point in workers/, without extension
  case $1 in
    worker) echo workers/temporal-worker ;;
    ingress) echo workers/kafka-ingress ;;
    relay) echo workers/outbox-relay-process ;;
    codec-server) echo workers/codec-server ;;
    *) die "unknown process $1" ;;
  esac
}
entry_of() { echo "$DIST/$(source_of "$1").js"; } # what runs: the compiled entry point

# Compiles workers/ activities/ workflows/ events/ rules/ prisma/client to dist/ (tsconfig.build.json,
# CommonJS) when a source, a tsconfig or the lockfile is newer than the last build, or `--force`.
# The stamp is taken before tsc reads the sources, so a file saved during a build makes the next one run.
BUILD_STAMP=$DIST/.build-stamp
build() {
  cd "$REPO_ROOT"
  # tsc's incremental state does not notice outputs deleted by hand: a forced build, or one with an entry
  # point missing, starts from scratch.
  local name
  for name in "${PROCESSES[@]}"; do [[ -f $(entry_of "$name") ]] || set -- --force; done
  if [[ ${1:-} != --force && -f $BUILD_STAMP ]] &&
    [[ -z $(find workers activities workflows events rules prisma/client tsconfig.json tsconfig.build.json package-lock.json -newer "$BUILD_STAMP" -type f -print -quit 2>/dev/null) ]]; then
    return 0
  fi
  say "==> building dist/ (tsc -p tsconfig.build.json)"
  mkdir -p "$DIST"
  [[ ${1:-} != --force ]] || rm -f "$DIST/.tsbuildinfo"
  local stamp
  stamp=$(mktemp "$DIST/.build-stamp.XXXXXX")
  if ! node "$REPO_ROOT/node_modules/typescript/bin/tsc" -p tsconfig.build.json; then rm -f "$stamp"; die "the build failed"; fi
  mv -f "$stamp" "$BUILD_STAMP"
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
  local f=$RUN_DIR/$1.pid pid args
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  # Its command line names the compiled entry point, or (a pid file from before the build step) the
  # TypeScript one that tsx ran.
  if [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] && args=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) &&
    grep -qxF -e "$(entry_of "$1")" -e "$REPO_ROOT/$(source_of "$1").ts" <<<"$args"; then
    echo "$pid"
    return 0
  fi
  rm -f "$f"
  return 1
}

# Node flags and environment of a process. The worker's memory is bounded: V8's old space of each of its
# isolates (the main thread's activities, the workflow thread's cached workflows) at 384 MiB instead of
# a quarter of the machine's memory, and two malloc arenas instead of eight per core (Temporal's core
# and the gRPC threads fragment them). WORKER_NODE_OPTIONS and MALLOC_ARENA_MAX override them.
node_args() { # worker|ingress|relay|codec-server
  if [[ $1 == worker ]]; then echo "${WORKER_NODE_OPTIONS:---max-old-space-size=384}"; fi
}
malloc_arenas() { # worker|...
  if [[ $1 == worker ]]; then echo "${MALLOC_ARENA_MAX:-2}"; else echo "${MALLOC_ARENA_MAX:-}"; fi
}

start_process() { # worker|ingress|relay|codec-server; waits for the line the process prints when it is ready
  local name=$1 ready=$2 log=$LOG_DIR/$1.log pid i
  if pid=$(running_pid "$name"); then say "$name: already running (pid $pid)"; return 0; fi
  [[ -f $(entry_of "$name") ]] || die "no $(entry_of "$name"): build first (npm run build)"
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  : >"$log"
  rm -f "$RUN_DIR/$name.pid"
  # One OS process: setsid and nohup exec, the child bash writes its own pid and execs node, so the pid
  # file holds node's pid and node leads its own session and process group. SELFSERVICE_RUN_DIR marks it
  # (and anything it would start) as this run directory's, for the sweep in processes_down.
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the child bash
  # The child closes every descriptor it inherited beyond stdio, so no caller's pipe stays open.
  local flags arenas
  read -r -a flags <<<"$(node_args "$name")"
  arenas=$(malloc_arenas "$name")
  (cd "$REPO_ROOT" && SELFSERVICE_RUN_DIR=$RUN_DIR SELFSERVICE_PROCESS=$name exec env ${arenas:+MALLOC_ARENA_MAX=$arenas} setsid nohup bash -c \
    'echo $$ >"$0"; for fd in /proc/$$/fd/*; do n=${fd##*/}; ((n > 2)) && eval "exec $n>&-"; done; exec "$@"' \
    "$RUN_DIR/$name.pid" node "${flags[@]}" "$(entry_of "$name")" >>"$log" 2>&1 </dev/null &)
  for ((i = 0; i < 600; i++)); do
    grep -q "$ready" "$log" 2>/dev/null && { say "$name: ready (pid $(cat "$RUN_DIR/$name.pid"), log ${log#"$REPO_ROOT"/})"; return 0; }
    if ((i > 20)) && ! running_pid "$name" >/dev/null; then
      tail -n 20 "$log" >&2
      die "$name exited during startup; its log is $log"
    fi
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  die "$name not ready after 120 s; its log is $log"
}

# SIGTERM to the process (each one finishes its work in hand and exits), SIGKILL to its process group
# after STOP_TIMEOUT seconds (default 30).
stop_process() {
  local pid i
  if ! pid=$(running_pid "$1"); then say "$1: not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < ${STOP_TIMEOUT:-30} * 5; i++)); do alive "$pid" || break; sleep 0.2; done
  if alive "$pid"; then
    say "$1: no exit $((${STOP_TIMEOUT:-30})) s after SIGTERM, sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$RUN_DIR/$1.pid"
  say "$1: stopped"
}

alive() { [[ -d /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# Pids of this clone's processes that still run, one per line, without a pid file to find them by:
# - every process started with this run directory's mark (SELFSERVICE_RUN_DIR, inherited by anything it starts);
# - for the default run directory, also any process running one of this clone's four entry points: compiled
#   (dist/workers/*.js), or the TypeScript (what tsx ran before the build step, `npm run worker`): with an
#   absolute path, or a relative one from this clone. Not those of another run directory (tests) or of
#   a private stack (another STACK_DIR, the chaos suite's), which stop their own.
# Processes of other users cannot be read and are never matched.
leftovers() {
  local file pid name env cwd
  local -a paths=() relative=()
  for name in "${PROCESSES[@]}"; do
    paths+=(-e "$(entry_of "$name")" -e "$REPO_ROOT/$(source_of "$name").ts")
    relative+=(-e "dist/$(source_of "$name").js" -e "$(source_of "$name").ts" -e "./$(source_of "$name").ts")
  done
  {
    grep -lzxF "SELFSERVICE_RUN_DIR=$RUN_DIR" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
    if [[ $RUN_DIR == "$DEFAULT_RUN_DIR" ]]; then
      for file in $(grep -lzxF "${paths[@]}" /proc/[0-9]*/cmdline 2>/dev/null || true); do
        pid=$(cut -d/ -f3 <<<"$file")
        env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null) || continue
        grep -q '^SELFSERVICE_RUN_DIR=' <<<"$env" && continue # started by app.sh for another run directory
        if grep -q '^STACK_DIR=' <<<"$env" && ! grep -qxF "STACK_DIR=$REPO_ROOT/.stack" <<<"$env"; then continue; fi
        echo "$pid"
      done
      for file in $(grep -lzxF "${relative[@]}" /proc/[0-9]*/cmdline 2>/dev/null || true); do
        pid=$(cut -d/ -f3 <<<"$file")
        cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || continue
        [[ $cwd == "$REPO_ROOT" ]] || continue
        env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null) || continue
        grep -q '^SELFSERVICE_RUN_DIR=' <<<"$env" && continue
        if grep -q '^STACK_DIR=' <<<"$env" && ! grep -qxF "STACK_DIR=$REPO_ROOT/.stack" <<<"$env"; then continue; fi
        echo "$pid"
      done
    fi
  } | { grep -vxF -e "$$" -e "${BASHPID:-$$}" || true; } | sort -un | while read -r pid; do if alive "$pid"; then echo "$pid"; fi; done || true
  return 0
}

# Stops the four processes by their pid files, then whatever of this clone is left of them (an orphan of
# a loader killed alone, a process whose pid file was lost), SIGTERM then SIGKILL; fails if anything remains.
processes_down() {
  local pid left i
  for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do stop_process "${PROCESSES[i]}"; done
  left=$(leftovers)
  if [[ -n $left ]]; then
    for pid in $left; do say "left over: pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160), sending SIGTERM"; done
    # shellcheck disable=SC2086 # one pid per word
    kill -TERM $left 2>/dev/null || true
    for ((i = 0; i < ${STOP_TIMEOUT:-30} * 5; i++)); do [[ -z $(leftovers) ]] && break; sleep 0.2; done
    left=$(leftovers)
    # shellcheck disable=SC2086
    if [[ -n $left ]]; then say "still running after SIGTERM: $(echo $left), sending SIGKILL"; kill -KILL $left 2>/dev/null || true; sleep 0.5; fi
  fi
  left=$(leftovers)
  # shellcheck disable=SC2086
  [[ -z $left ]] || die "processes of this clone still run: $(echo $left)"
  say "no process of this clone is left"
}

up() {
  deps
  build
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
  (cd "$REPO_ROOT" && node "$DIST/workers/cli.js" import services/demo-org.json | tail -n 1)
  cat <<EOF

Self Service backend is running.
  Temporal Web UI   http://127.0.0.1:8233   (every request is a workflow: app-request-<requestId>;
                                            payloads are encrypted, the UI decodes them through :8888:
                                            sign in once at http://127.0.0.1:8888/login with the token in
                                            .stack/codec-token; in the UI's codec server settings choose
                                            "Use my browser setting", enter http://127.0.0.1:8888 and turn
                                            on "Include cross-origin credentials"; README, "Security")
  Mailpit (emails)  http://127.0.0.1:8025   (open it in a browser; API: /api/v1/messages)
  Kafka             127.0.0.1:9092          (topics selfservice.*.v1)
Try it:   npm run cli -- available-apps org-acme
          npm run cli -- send selfservice.app.requested.v1 '{"orgId":"org-acme","userId":"u-alice","appId":"app-expenses","comment":"for the offsite"}'
Stop it:  npm stop
EOF
}

down() {
  processes_down
  bash "$STACK" stop
}

status() {
  local name pid
  for name in "${PROCESSES[@]}"; do
    if pid=$(running_pid "$name"); then printf '%-9s running  pid %s\n' "$name" "$pid"; else printf '%-9s stopped\n' "$name"; fi
  done
  local tracked=" " left
  for name in "${PROCESSES[@]}"; do pid=$(running_pid "$name") && tracked+="$pid "; done
  for left in $(leftovers); do
    [[ $tracked == *" $left "* ]] || printf 'not in a pid file (npm stop ends it): pid %s %s\n' "$left" "$(tr '\0' ' ' <"/proc/$left/cmdline" 2>/dev/null | cut -c1-160)"
  done
  bash "$STACK" status
}

case ${1:-help} in
  up) up ;;
  cli) shift; payload_key; database_urls; cd "$REPO_ROOT" && exec npx tsx workers/cli.ts "$@" ;;
  down) down ;;
  processes-down) processes_down ;;
  leftovers) leftovers ;; # pids of this clone's processes, with or without a pid file (what processes-down ends)
  node-args) node_args "${2:?node-args needs a process name}" ;; # the node flags a process runs with (the bench's worker too)
  malloc-arenas) malloc_arenas "${2:?malloc-arenas needs a process name}" ;;
  start) # start one process (tests); the build, the payload key and the database URLs as `up` makes them
    [[ -n ${2:-} ]] || die "usage: app.sh start worker|ingress|relay|codec-server"
    build; payload_key
    [[ $2 == codec-server ]] || database_urls # the codec server talks to no database
    case $2 in
      worker) start_process worker 'worker: polling' ;;
      ingress) start_process ingress 'ingress: consuming' ;;
      relay) start_process relay 'relay: publishing' ;;
      codec-server) codec_token; start_process codec-server 'codec-server: listening' ;;
      *) die "unknown process $2" ;;
    esac ;;
  stop) [[ -n ${2:-} ]] || die "usage: app.sh stop worker|ingress|relay|codec-server"; source_of "$2" >/dev/null; stop_process "$2" ;;
  status) status ;;
  deps) deps ;;
  build) shift; build "$@" ;;
  *) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; [[ ${1:-help} == help ]] || exit 2 ;;
esac
