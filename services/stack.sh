#!/usr/bin/env bash
# Local infrastructure without Docker: Temporal dev server, Kafka (KRaft), PostgreSQL 15, Mailpit,
# and the Temporal time-skipping test server (a wrapper that tests spawn themselves).
#
#   services/stack.sh install              build/download every tool (idempotent, cached per user)
#   services/stack.sh start [service...]   start temporal kafka postgres mailpit (default: all)
#   services/stack.sh stop [service...]    stop what this script started
#   services/stack.sh status               one line per service
#   services/stack.sh logs <service> [-f]  show (or follow) a service log
#   services/stack.sh reset                stop everything and delete .stack/data (keeps the cache)
#   services/stack.sh env                  print the environment variables the services answer at
#
# See services/README.md for ports, versions, folders and measured timings.
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Versions and locations
# ---------------------------------------------------------------------------------------------
TEMPORAL_CLI_VERSION=1.5.1          # v1.6+ cannot be go-installed (replace directive in go.mod)
TEMPORAL_TEST_SERVER_VERSION=1.38.0
KAFKA_VERSION=4.4.0                 # kafka_2.13; kafkajs 2.2.4 verified against it (README)
LOG4J_VERSION=2.25.5
SLF4J_VERSION=2.0.17
MAILPIT_VERSION=1.33.1
PG_MAJOR=${PG_MAJOR:-15}
MVN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
# STACK_DIR: another folder gives a second, independent stack (its own tools links, data, logs, pid files),
# e.g. the fault suite's private copy on other ports (set every address variable below for it too).
STACK_DIR=${STACK_DIR:-$REPO_ROOT/.stack}
TOOLS_DIR=$STACK_DIR/tools
RUN_DIR=$STACK_DIR/run
LOG_DIR=$STACK_DIR/logs
DATA_DIR=$STACK_DIR/data
ETC_DIR=$STACK_DIR/etc
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/selfservice-stack

PG_BIN=${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
# The PostgreSQL cluster lives in $DATA_DIR/postgres, except when root runs a stack the 'postgres' OS user
# cannot reach (a clone under /root, mode 700): then its data and socket live in a postgres-owned folder
# $PG_EXTERNAL_ROOT/<hash of STACK_DIR>/ (data/, socket/, stack-dir naming its stack) and
# $DATA_DIR/postgres is a symlink to its data/, which records the choice. No home folder is chmod-ed.
PG_LINK=$DATA_DIR/postgres
PG_EXTERNAL_ROOT=/var/lib/selfservice-stack
PG_DATA=$PG_LINK
PG_HOME=   # set when the cluster lives under $PG_EXTERNAL_ROOT

ALL_SERVICES=(temporal kafka postgres mailpit)
START_TIMEOUT=${STACK_START_TIMEOUT:-90}   # seconds per service
STOP_TIMEOUT=${STACK_STOP_TIMEOUT:-30}     # seconds before SIGKILL

TEMPORAL_SEARCH_ATTRIBUTES=(
  SelfServiceOrgId=Keyword
  SelfServiceAppId=Keyword
  SelfServiceRequesterId=Keyword
  SelfServiceStatus=Keyword
  SelfServiceApproverIds=KeywordList
  SelfServiceCommandType=Keyword
)

# ---------------------------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------------------------
say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
STEP_T0=0
step() { STEP_T0=$SECONDS; printf '==> %s\n' "$*"; }
step_done() { printf '    done in %ss\n' "$((SECONDS - STEP_T0))"; }
rel() { printf '%s' "${1#"$REPO_ROOT"/}"; }

# ---------------------------------------------------------------------------------------------
# Addresses (environment decides; defaults are the local stack)
# ---------------------------------------------------------------------------------------------
TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:7233}
KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
# The owner role's URL (it owns the tables and runs the migrations); DATABASE_URL, the application
# role's, names the owner only in setups that set nothing else (README, "Database roles").
MIGRATION_DATABASE_URL=${MIGRATION_DATABASE_URL:-${DATABASE_URL:-postgresql://selfservice:selfservice@127.0.0.1:5433/selfservice}}
SMTP_URL=${SMTP_URL:-smtp://127.0.0.1:1025}
MAILPIT_URL=${MAILPIT_URL:-http://127.0.0.1:8025}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}

# "scheme://user:pass@host:port/path" or "host:port" -> "host port"
split_hostport() {
  local s=$1 default_port=$2
  s=${s#*://}; s=${s##*@}; s=${s%%/*}; s=${s%%\?*}; s=${s%%,*}
  local host=${s%:*} port=${s##*:}
  if [[ $s != *:* ]]; then host=$s; port=$default_port; fi
  [[ $port =~ ^[0-9]+$ ]] || die "cannot parse a port out of '$1'"
  printf '%s %s\n' "$host" "$port"
}
hp=$(split_hostport "$TEMPORAL_ADDRESS" 7233) || exit 1; read -r TEMPORAL_HOST TEMPORAL_PORT <<<"$hp"
hp=$(split_hostport "$KAFKA_BROKERS" 9092) || exit 1; read -r KAFKA_HOST KAFKA_PORT <<<"$hp"
hp=$(split_hostport "$MIGRATION_DATABASE_URL" 5432) || exit 1; read -r PG_HOST PG_PORT <<<"$hp"
hp=$(split_hostport "$SMTP_URL" 1025) || exit 1; read -r SMTP_HOST SMTP_PORT <<<"$hp"
hp=$(split_hostport "$MAILPIT_URL" 8025) || exit 1; read -r MAILPIT_HOST MAILPIT_PORT <<<"$hp"
MAILPIT_URL=${MAILPIT_URL%/}

# Owner role and database from MIGRATION_DATABASE_URL; selfservice and selfservice_test are always created.
PG_USER=selfservice PG_PASSWORD=selfservice PG_DB=selfservice
if [[ $MIGRATION_DATABASE_URL =~ ^postgres(ql)?://([^:@/]+)(:([^@/]*))?@[^/]*/([^?]+) ]]; then
  PG_USER=${BASH_REMATCH[2]}; PG_PASSWORD=${BASH_REMATCH[4]:-}; PG_DB=${BASH_REMATCH[5]}
fi
# The application role: the processes connect as it; its rights are granted by the migration
# prisma/migrations/*_application_role. Its password is made once in $STACK_DIR (git-ignored).
APP_DB_ROLE=selfservice_app
APP_DB_PASSWORD_FILE=$STACK_DIR/database-app.password
[[ $PG_USER != "$APP_DB_ROLE" ]] || die "MIGRATION_DATABASE_URL (or, without it, DATABASE_URL) must name the owner role, not $APP_DB_ROLE"

is_local_host() { [[ $1 == 127.0.0.1 || $1 == localhost ]]; }
service_host() {
  case $1 in
    temporal) echo "$TEMPORAL_HOST" ;; kafka) echo "$KAFKA_HOST" ;;
    postgres) echo "$PG_HOST" ;; mailpit) echo "$MAILPIT_HOST" ;;
  esac
}
service_addr() {
  case $1 in
    temporal) echo "$TEMPORAL_HOST:$TEMPORAL_PORT" ;;
    kafka) echo "$KAFKA_HOST:$KAFKA_PORT" ;;
    postgres) echo "$PG_HOST:$PG_PORT" ;;
    mailpit) echo "smtp $SMTP_HOST:$SMTP_PORT, http $MAILPIT_HOST:$MAILPIT_PORT" ;;
  esac
}
log_file() { echo "$LOG_DIR/$1.log"; }
pid_file() { echo "$RUN_DIR/$1.pid"; }

# ---------------------------------------------------------------------------------------------
# Probes
# ---------------------------------------------------------------------------------------------
# shellcheck disable=SC2016 # $1/$2 expand in the child bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

http_ok() { # url -> 0 if HTTP 2xx
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null
  else
    local rest=${1#*://} hostport path code
    hostport=${rest%%/*}; path=/${rest#*/}; [[ $rest == */* ]] || path=/
    # shellcheck disable=SC2016 # expands in the child bash
    code=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
      printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$1" >&3; head -n1 <&3' _ "$hostport" "$path" 2>/dev/null) || return 1
    [[ $code =~ ^HTTP/[0-9.]+\ 2 ]]
  fi
}

temporal_bin() { echo "$TOOLS_DIR/temporal"; }

# Answers at the configured address?
probe() {
  case $1 in
    temporal)
      port_open "$TEMPORAL_HOST" "$TEMPORAL_PORT" || return 1
      [[ -x $(temporal_bin) ]] || return 0   # port answers; no CLI to ask for more yet
      timeout 10 "$(temporal_bin)" operator cluster health --address "$TEMPORAL_HOST:$TEMPORAL_PORT" \
        --command-timeout 5s >/dev/null 2>&1 ;;
    kafka) port_open "$KAFKA_HOST" "$KAFKA_PORT" ;;
    postgres)
      if [[ -x $PG_BIN/pg_isready ]]; then
        "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 3
      else
        port_open "$PG_HOST" "$PG_PORT"
      fi ;;
    mailpit) http_ok "$MAILPIT_URL/readyz" ;;
  esac
}

# Something listens on one of the service's ports but does not answer as the service.
port_taken() {
  case $1 in
    temporal) port_open "$TEMPORAL_HOST" "$TEMPORAL_PORT" || port_open 127.0.0.1 "$TEMPORAL_UI_PORT" ;;
    kafka) port_open "$KAFKA_HOST" "$KAFKA_PORT" || port_open 127.0.0.1 "$KAFKA_CONTROLLER_PORT" ;;
    postgres) port_open "$PG_HOST" "$PG_PORT" ;;
    mailpit) port_open "$MAILPIT_HOST" "$MAILPIT_PORT" || port_open "$SMTP_HOST" "$SMTP_PORT" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Process bookkeeping (pid files; a pid only counts if its command line is ours)
# ---------------------------------------------------------------------------------------------
# A string that only the command line of this clone's process of that service contains.
pid_marker() {
  case $1 in
    temporal) echo "$DATA_DIR/temporal/temporal.db" ;;
    kafka) echo "$ETC_DIR/kafka/server.properties" ;;
    postgres) echo "$PG_DATA" ;;
    mailpit) echo "$DATA_DIR/mailpit/mailpit.db" ;;
  esac
}

pid_is_ours() { # service pid
  local pid=$2 cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *" $(pid_marker "$1") "* ]]   # whole argument, not a suffix of another path
}

# Prints the pid of our running process of the service, or fails (and drops a stale pid file).
running_pid() {
  local f pid
  f=$(pid_file "$1")
  if [[ $1 == postgres && -f $PG_DATA/postmaster.pid ]]; then
    pid=$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)
    if pid_is_ours postgres "$pid"; then echo "$pid" >"$f"; echo "$pid"; return 0; fi
  fi
  [[ -f $f ]] || return 1
  pid=$(cat "$f" 2>/dev/null || true)
  if pid_is_ours "$1" "$pid"; then echo "$pid"; return 0; fi
  rm -f "$f"
  return 1
}

# Start a command detached (own session, no stdin, output appended to the log); the child
# writes its own pid before exec so the pid file is right whatever setsid does.
launch() { # service cmd...
  local name=$1; shift
  local log pidf
  log=$(log_file "$name"); pidf=$(pid_file "$name")
  rm -f "$pidf"
  # shellcheck disable=SC2016 # $$, $0 and $@ belong to the child bash
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" >>"$log" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 50; i++)); do [[ -s $pidf ]] && return 0; sleep 0.1; done
  die "$name: failed to launch (see $(rel "$log"))"
}

rotate_log() { # service [owner]
  local log
  log=$(log_file "$1")
  mkdir -p "$LOG_DIR"
  if [[ -f $log ]]; then mv -f "$log" "$log.1"; fi
  : >"$log"
  if [[ -n ${2:-} ]]; then chown "$2" "$log"; fi
}

fail_service() { # service message
  local log
  log=$(log_file "$1")
  {
    printf 'error: %s: %s\n' "$1" "$2"
    printf '       log: %s\n' "$log"
    if [[ -s $log ]]; then
      printf -- '------ last 20 lines of %s ------\n' "$(rel "$log")"
      tail -n 20 "$log"
      printf -- '------\n'
    fi
  } >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Install
# ---------------------------------------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"; }

java_bin() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then readlink -f "$JAVA_HOME/bin/java"; return; fi
  command -v java >/dev/null 2>&1 || die "java not found (Java 17+ is needed for Kafka and the Temporal test server)"
  readlink -f "$(command -v java)"
}

check_java() {
  local j v
  j=$(java_bin)
  v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [[ ${v%%.*} =~ ^[0-9]+$ && ${v%%.*} -ge 17 ]] || die "$j is Java ${v:-?}; Java 17+ is needed"
}

cache_complete() { [[ -f $1/.complete && "$(cat "$1/.complete")" == "$2" ]]; }

with_cache_lock() { # run "$@" holding the per-user cache lock (two clones installing at once)
  mkdir -p "$CACHE_ROOT"
  if command -v flock >/dev/null 2>&1; then
    (
      flock 9
      "$@"
    ) 9>"$CACHE_ROOT/.lock"
  else
    "$@"
  fi
}

go_install_tool() { # name version module-path-with-@version binary-name label
  local name=$1 version=$2 module=$3 bin=$4 label=$5
  local dir=$CACHE_ROOT/$name-$version spec="go install $module"
  cache_complete "$dir" "$spec" && [[ -x $dir/$bin ]] && return 0
  need go "Go 1.25+ is needed to build $label"
  local tmp=$dir.tmp.$$ ilog=$CACHE_ROOT/logs/$name-$version.install.log
  mkdir -p "$CACHE_ROOT/logs"; rm -rf "$tmp"; mkdir -p "$tmp"
  step "building $label v$version with go install (first time: several minutes; output in $ilog)..."
  if ! GOBIN=$tmp go install "$module" >"$ilog" 2>&1; then
    tail -n 30 "$ilog" >&2; rm -rf "$tmp"; die "go install $module failed (log: $ilog)"
  fi
  printf '%s' "$spec" >"$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  step_done
}

# Mailpit with its web UI. `go install` cannot give one: the UI is built by npm/esbuild into server/ui/dist
# and embedded with go:embed, and the module zip has no dist. So: the module source from the Go proxy,
# copied to a scratch folder, `npm run build` there, then `go build`. The npm registry reachable here lacks
# versions that upstream's package-lock.json names (rapidoc 12, sass-embedded 1.108.1), so `npm ci` cannot
# run: the scratch copy's package.json keeps the bundle's dependencies (rapidoc pinned to the 9.x served
# here; it only draws the /api/v1/ docs page) plus esbuild and its Vue/Sass plugins, without the lint/test
# tools; `npm install` keeps upstream's locked versions for everything else (legacy peer deps: the
# unservable sass-embedded is only a peer of esbuild-sass-plugin, which runs on `sass`).
MAILPIT_MODULE=github.com/axllent/mailpit
# Its own cache folder (mailpit-ui-*, not the blank go-install build's mailpit-*), so that checkouts from
# before and after this change do not replace each other's build; bump "rev" to force a rebuild.
MAILPIT_SPEC="go build $MAILPIT_MODULE@v$MAILPIT_VERSION with its web UI (npm run build), rev 1"
MAILPIT_NPM_DROP=(@eslint/compat @eslint/js @playwright/test @types/bootstrap eslint eslint-config-prettier
  eslint-plugin-vue globals jsdom prettier)
mailpit_dir() { echo "$CACHE_ROOT/mailpit-ui-$MAILPIT_VERSION"; }

build_mailpit() {
  local dir spec=$MAILPIT_SPEC
  dir=$(mailpit_dir)
  cache_complete "$dir" "$spec" && [[ -x $dir/mailpit ]] && return 0
  need go "Go 1.25+ is needed to build Mailpit"
  need node "Node.js 18+ is needed to build Mailpit's web UI"
  need npm "npm is needed to build Mailpit's web UI"
  local tmp=$dir.tmp.$$ ilog=$CACHE_ROOT/logs/mailpit-ui-$MAILPIT_VERSION.install.log
  mkdir -p "$CACHE_ROOT/logs"; rm -rf "$tmp"; mkdir -p "$tmp"
  step "building Mailpit v$MAILPIT_VERSION with its web UI (module source, npm install + esbuild, go build; first time: about 3 minutes; output in $ilog)..."
  if ! build_mailpit_in "$tmp" >"$ilog" 2>&1; then
    tail -n 30 "$ilog" >&2; rm -rf "$tmp"; die "building Mailpit v$MAILPIT_VERSION failed (log: $ilog)"
  fi
  rm -rf "$tmp/src"
  printf '%s' "$spec" >"$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  step_done
}

build_mailpit_in() ( # scratch-dir; a subshell (set -x, cd); output goes to the install log
  tmp=$1
  set -x
  src=$(cd "$tmp" && GOWORK=off go mod download -json "$MAILPIT_MODULE@v$MAILPIT_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p') || exit 1
  [[ -n $src && -f $src/package.json && -f $src/esbuild.config.mjs ]] || { echo "no module source folder found"; exit 1; }
  cp -R "$src" "$tmp/src" && chmod -R u+w "$tmp/src" && cd "$tmp/src" || exit 1
  npm pkg set dependencies.rapidoc='^9.3.8' || exit 1
  for d in "${MAILPIT_NPM_DROP[@]}"; do npm pkg delete "devDependencies.$d" || exit 1; done
  npm install --include=dev --ignore-scripts --legacy-peer-deps --no-audit --no-fund --no-update-notifier || exit 1
  npm run build || exit 1
  [[ -s server/ui/dist/app.js && -s server/ui/dist/app.css ]] || { echo "npm run build made no server/ui/dist/app.{js,css}"; exit 1; }
  GOWORK=off CGO_ENABLED=0 go build -buildvcs=false -trimpath \
    -ldflags "-s -w -X $MAILPIT_MODULE/config.Version=v$MAILPIT_VERSION" -o "$tmp/mailpit" . || exit 1
)

maven_jars() { # name version label pom-dir spec -Dprops...
  local name=$1 version=$2 label=$3 pomdir=$4 spec=$5; shift 5
  local dir=$CACHE_ROOT/$name-$version
  cache_complete "$dir" "$spec" && compgen -G "$dir/lib/*.jar" >/dev/null && return 0
  need mvn "Maven is needed to download $label from Maven Central"
  local tmp=$dir.tmp.$$ ilog=$CACHE_ROOT/logs/$name-$version.install.log
  mkdir -p "$CACHE_ROOT/logs"; rm -rf "$tmp"; mkdir -p "$tmp/lib"
  step "downloading $label $version jars from Maven Central (first time: about a minute; output in $ilog)..."
  # shellcheck disable=SC2086 # STACK_MVN_ARGS is a list of extra maven arguments
  if ! mvn -B -q ${STACK_MVN_ARGS:-} -f "$pomdir/pom.xml" "$@" \
      "$MVN_DEPENDENCY_PLUGIN:copy-dependencies" -DoutputDirectory="$tmp/lib" >"$ilog" 2>&1; then
    tail -n 30 "$ilog" >&2; rm -rf "$tmp"; die "maven could not resolve $label $version (log: $ilog)"
  fi
  printf '%s' "$spec" >"$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  step_done
}

# A key for the JVM the CDS archive was dumped with (an archive only fits that exact JVM build).
java_key() {
  local j home lib
  j=$(java_bin); home=$(dirname "$(dirname "$j")"); lib=$home/lib/server/libjvm.so
  [[ -f $lib ]] || lib=$j
  printf '%s:%s' "$j" "$(stat -Lc '%s-%Y' "$lib")" | sha1sum | cut -c1-12
}

TEST_SERVER_JAVA_FLAGS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC)
test_server_dir() { echo "$CACHE_ROOT/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION"; }

free_port() {
  local p
  for p in $(shuf -i 20000-29999 -n 50); do port_open 127.0.0.1 "$p" || { echo "$p"; return 0; }; done
  die "no free port found"
}

test_server_cds() { # AppCDS archive: JVM start ~1.2 s -> ~0.4 s on 2 cores (see README)
  local dir jsa tmp port pid i j
  dir=$(test_server_dir); jsa=$dir/cds/$(java_key).jsa
  [[ -f $jsa ]] && return 0
  j=$(java_bin)
  mkdir -p "$dir/cds"; tmp=$jsa.tmp.$$; port=$(free_port)
  step "creating a class-data-sharing archive for the Temporal test server (a few seconds)..."
  "$j" "${TEST_SERVER_JAVA_FLAGS[@]}" -XX:ArchiveClassesAtExit="$tmp" -cp "$dir/lib/*" \
    io.temporal.testserver.TestServer "$port" >"$CACHE_ROOT/logs/temporal-test-server-cds.log" 2>&1 &
  pid=$!
  for ((i = 0; i < 300; i++)); do port_open 127.0.0.1 "$port" && break; sleep 0.1; done
  sleep 1
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -s $tmp ]]; then mv -f "$tmp" "$jsa"; step_done; else rm -f "$tmp"; warn "CDS archive not created; the test server will start without it"; fi
}

write_test_server_wrapper() {
  local dir j jsa wrapper content
  dir=$(test_server_dir); j=$(java_bin); jsa=$dir/cds/$(java_key).jsa
  wrapper=$TOOLS_DIR/temporal-test-server
  content=$(cat <<EOF
#!/bin/sh
# Generated by services/stack.sh install: Temporal time-skipping test server $TEMPORAL_TEST_SERVER_VERSION.
# Usage: temporal-test-server <port> [--enable-time-skipping]
# TestWorkflowEnvironment.createTimeSkipping spawns this path and kills the pid if the port is not
# open within ~5 s: hence exec, C1-only JIT, serial GC and an AppCDS archive for a fast JVM start.
cds=''
if [ -f '$jsa' ]; then cds='-XX:SharedArchiveFile=$jsa'; fi
exec '$j' ${TEST_SERVER_JAVA_FLAGS[*]} -Xshare:auto \$cds -Xlog:cds=off -Xlog:cds+dynamic=off \\
  -cp '$dir/lib/*' io.temporal.testserver.TestServer "\$@"
EOF
)
  if [[ ! -f $wrapper || "$(cat "$wrapper")" != "$content" ]]; then
    rm -f "$wrapper"; printf '%s\n' "$content" >"$wrapper"; chmod 755 "$wrapper"
  fi
}

pg_owner() { if [[ $EUID -eq 0 ]]; then echo postgres; else id -un; fi; }
# (from /: the postgres user may not be allowed into the current folder, and pg_ctl would complain)
as_pg() { if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

pg_external_home() { printf '%s/%s\n' "$PG_EXTERNAL_ROOT" "$(printf '%s' "$STACK_DIR" | sha1sum | cut -c1-12)"; }
use_external_pg() { PG_HOME=$(pg_external_home); PG_DATA=$PG_HOME/data; }

# Can the postgres OS user get into the folder (or, before it exists, into the nearest existing one above)?
postgres_reaches() {
  local d=$1
  while [[ ! -d $d && $d == /?* ]]; do d=$(dirname "$d"); done
  as_pg test -x "$d" 2>/dev/null
}

# Sets PG_DATA/PG_HOME for this stack: the link's target, the cluster in $DATA_DIR, or (root, new cluster,
# folder out of the postgres user's reach) the external folder. ensure_postgres_cluster decides again.
pg_locate() {
  local target
  if [[ -L $PG_LINK ]]; then
    target=$(readlink "$PG_LINK")
    if [[ $target == "$PG_EXTERNAL_ROOT"/*/data ]]; then PG_DATA=$target; PG_HOME=${target%/data}; fi
  elif [[ $EUID -eq 0 && ! -f $PG_LINK/PG_VERSION ]] && id -u postgres >/dev/null 2>&1 \
      && ! postgres_reaches "$PG_LINK"; then
    use_external_pg
  fi
}

# A cluster exists (one outside $DATA_DIR only counts while the link records it: a deleted data/ means new data).
pg_cluster_ready() { [[ -f $PG_DATA/PG_VERSION ]] && { [[ -z $PG_HOME ]] || [[ -L $PG_LINK ]]; }; }

rm_pg_home() {
  [[ $PG_HOME == "$PG_EXTERNAL_ROOT"/?* && $PG_HOME != *..* ]] || die "refusing to delete '$PG_HOME'"
  rm -rf "$PG_HOME"
}

ensure_postgres_packages() {
  [[ -x $PG_BIN/initdb ]] && return 0
  step "installing PostgreSQL $PG_MAJOR from Debian packages (apt-get update + install postgresql)..."
  local sudo=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "$PG_BIN/initdb missing and not root: run 'apt-get install -y postgresql' as root"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y postgresql
  [[ -x $PG_BIN/initdb ]] || die "apt installed postgresql but $PG_BIN/initdb is still missing (this distribution's default may not be $PG_MAJOR; set PG_MAJOR)"
  step_done
}

ensure_postgres_cluster() {
  pg_cluster_ready && return 0
  local owner pid
  owner=$(pg_owner)
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  if [[ -z $PG_HOME && $EUID -eq 0 && ! -f $PG_LINK/PG_VERSION ]] && ! postgres_reaches "$DATA_DIR"; then
    use_external_pg
  fi
  if [[ -n $PG_HOME ]]; then
    # root, and the postgres user cannot reach $DATA_DIR: data and socket in a postgres-owned folder.
    if pid=$(running_pid postgres); then
      die "postgres: a server of an earlier $STACK_DIR still runs from $PG_DATA (pid $pid) though $(rel "$PG_LINK") is gone; stop it first: services/stack.sh stop postgres (with the same STACK_DIR)"
    fi
    if [[ -f $PG_DATA/PG_VERSION ]]; then
      say "postgres: deleting the cluster in $PG_HOME left by an earlier $STACK_DIR (its link $(rel "$PG_LINK") is gone)"
    fi
    if [[ -e $PG_HOME ]]; then rm_pg_home; fi
    mkdir -p "$PG_EXTERNAL_ROOT"; chmod 755 "$PG_EXTERNAL_ROOT"
    mkdir -p "$PG_DATA" "$PG_HOME/socket"
    printf '%s\n' "$STACK_DIR" >"$PG_HOME/stack-dir"
    chown -R "$owner:" "$PG_HOME"; chmod 700 "$PG_HOME" "$PG_DATA"
    rm -rf "$PG_LINK"   # e.g. an empty folder left by an earlier attempt
  else
    rm -rf "$PG_DATA"; mkdir -p "$PG_DATA"; chmod 700 "$PG_DATA"
    if [[ $EUID -eq 0 ]]; then chown "$owner:" "$PG_DATA"; fi
  fi
  as_pg test -w "$PG_DATA" || die "the '$owner' OS user cannot write $PG_DATA (a parent folder is not traversable for it)"
  step "creating the PostgreSQL $PG_MAJOR cluster with initdb in $(rel "$PG_DATA") (as OS user $owner)..."
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" --username=postgres --encoding=UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$LOG_DIR/postgres-initdb.log" 2>&1; then
    cat "$LOG_DIR/postgres-initdb.log" >&2; die "initdb failed"
  fi
  printf "\n# added by services/stack.sh (port, listen address, socket dir are set there on each start)\ninclude_if_exists = 'stack.conf'\n" \
    | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
  if [[ -n $PG_HOME ]]; then
    ln -sfn "$PG_DATA" "$PG_LINK"
    say "    (outside the repository: the '$owner' OS user cannot reach $(rel "$DATA_DIR"); $(rel "$PG_LINK") links to it)"
  fi
  step_done
}

link_tool() { ln -sfn "$1" "$TOOLS_DIR/$2"; }

do_install() {
  mkdir -p "$TOOLS_DIR" "$RUN_DIR" "$LOG_DIR" "$DATA_DIR" "$CACHE_ROOT"
  with_cache_lock install_cached
  link_tool "$CACHE_ROOT/temporal-cli-$TEMPORAL_CLI_VERSION/temporal" temporal
  link_tool "$(mailpit_dir)/mailpit" mailpit
  link_tool "$CACHE_ROOT/kafka-$KAFKA_VERSION" kafka
  link_tool "$(test_server_dir)/lib" temporal-test-server-lib
  link_tool "$PG_BIN" postgresql
  write_test_server_wrapper
  ensure_postgres_cluster
}

install_cached() {
  go_install_tool temporal-cli "$TEMPORAL_CLI_VERSION" \
    "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION" temporal "Temporal CLI"
  build_mailpit
  check_java
  maven_jars temporal-test-server "$TEMPORAL_TEST_SERVER_VERSION" "Temporal test server" \
    "$SCRIPT_DIR/maven/temporal-test-server" "io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION" \
    -Dtemporal-test-server.version="$TEMPORAL_TEST_SERVER_VERSION"
  test_server_cds
  maven_jars kafka "$KAFKA_VERSION" "Kafka" "$SCRIPT_DIR/maven/kafka" \
    "kafka_2.13:$KAFKA_VERSION log4j:$LOG4J_VERSION slf4j:$SLF4J_VERSION" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" -Dslf4j.version="$SLF4J_VERSION"
  ensure_postgres_packages
}

installed() { # quick check used by start
  [[ -x $TOOLS_DIR/temporal && -x $TOOLS_DIR/mailpit && -d $TOOLS_DIR/kafka/lib && -x $TOOLS_DIR/temporal-test-server \
    && -x $PG_BIN/initdb ]] && pg_cluster_ready \
    && cache_complete "$CACHE_ROOT/kafka-$KAFKA_VERSION" "kafka_2.13:$KAFKA_VERSION log4j:$LOG4J_VERSION slf4j:$SLF4J_VERSION" \
    && cache_complete "$(mailpit_dir)" "$MAILPIT_SPEC" \
    && [[ "$(readlink "$TOOLS_DIR/temporal")" == "$CACHE_ROOT/temporal-cli-$TEMPORAL_CLI_VERSION/temporal" \
    && "$(readlink "$TOOLS_DIR/mailpit")" == "$(mailpit_dir)/mailpit" ]] \
    && grep -qF "$(test_server_dir)/cds/$(java_key).jsa" "$TOOLS_DIR/temporal-test-server"  # same JVM as at install
}

# ---------------------------------------------------------------------------------------------
# Start
# ---------------------------------------------------------------------------------------------
launch_temporal() {
  mkdir -p "$DATA_DIR/temporal"
  local args=() sa
  for sa in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa"); done
  rotate_log temporal
  launch temporal "$TOOLS_DIR/temporal" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" \
    --ui-port "$TEMPORAL_UI_PORT" --db-filename "$DATA_DIR/temporal/temporal.db" --namespace default \
    --ui-codec-endpoint "http://127.0.0.1:${CODEC_SERVER_PORT:-8888}" "${args[@]}"
}

write_kafka_config() {
  local etc=$ETC_DIR/kafka
  mkdir -p "$etc" "$DATA_DIR/kafka"
  cat >"$etc/server.properties" <<EOF
# Generated by services/stack.sh on each start. Single node, KRaft, 127.0.0.1 only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR/kafka
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
EOF
  cat >"$etc/log4j2.properties" <<'EOF'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
EOF
}

kafka_java() { # args... (a java command line for the Kafka jars)
  local heap
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
  printf '%s\0' "$(java_bin)" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ETC_DIR/kafka/log4j2.properties" -cp "$TOOLS_DIR/kafka/lib/*" "$@"
}

launch_kafka() {
  local cmd=()
  write_kafka_config
  rotate_log kafka
  if [[ ! -f $DATA_DIR/kafka/meta.properties ]]; then
    local id
    id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    while [[ $id == -* ]]; do id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
    step "formatting Kafka storage in $(rel "$DATA_DIR/kafka") (cluster id $id)..."
    mapfile -d '' cmd < <(kafka_java kafka.tools.StorageTool format --standalone -t "$id" \
      -c "$ETC_DIR/kafka/server.properties")
    "${cmd[@]}" >>"$(log_file kafka)" 2>&1 || fail_service kafka "storage format failed"
    step_done
  fi
  mapfile -d '' cmd < <(kafka_java kafka.Kafka "$ETC_DIR/kafka/server.properties")
  launch kafka "${cmd[@]}"
}

launch_postgres() {
  local sock owner
  owner=$(pg_owner)
  # Unix socket paths are limited to ~107 bytes.
  sock=$RUN_DIR/postgres
  if [[ -n $PG_HOME ]]; then
    sock=$PG_HOME/socket   # the postgres user cannot reach $RUN_DIR
  elif ((${#sock} > 80)); then
    local key=$REPO_ROOT
    if [[ $STACK_DIR != "$REPO_ROOT/.stack" ]]; then key=$STACK_DIR; fi   # a second stack of this clone
    sock=/tmp/selfservice-stack-$(printf '%s' "$key" | sha1sum | cut -c1-10)
  fi
  mkdir -p "$sock"
  if [[ $EUID -eq 0 ]]; then chown "$owner:" "$sock"; fi
  echo "$sock" >"$RUN_DIR/postgres.socketdir"
  as_pg tee "$PG_DATA/stack.conf" >/dev/null <<EOF
# Generated by services/stack.sh on each start.
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
# Disposable dev/test data: trade crash safety for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  rotate_log postgres "$owner"
  rm -f "$(pid_file postgres)"
  local runas=()
  if [[ $EUID -eq 0 ]]; then runas=(runuser -u postgres --); fi
  # No -l: the server inherits the log opened here, so the postgres user need not reach $LOG_DIR.
  (cd / && setsid "${runas[@]}" "$PG_BIN/pg_ctl" start -D "$PG_DATA" -W -s </dev/null >>"$(log_file postgres)" 2>&1) \
    || fail_service postgres "pg_ctl start failed"
}

postgres_setup_roles() {
  local sock
  sock=$(cat "$RUN_DIR/postgres.socketdir")
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$PG_PORT" -U postgres -d postgres \
    -v u="$PG_USER" -v p="$PG_PASSWORD" -v d1=selfservice -v d2=selfservice_test -v d3="$PG_DB" \
    >>"$(log_file postgres)" 2>&1 <<'SQL' || fail_service postgres "creating the role and databases failed"
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', d, :'u')
  FROM (SELECT DISTINCT unnest(ARRAY[:'d1', :'d2', :'d3']) AS d) x
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d) \gexec
SQL
  postgres_app_role "$sock"
}

# The application role, with no attribute beyond LOGIN and the password of $APP_DB_PASSWORD_FILE
# (made once; psql reads it from the file, so it is never on a command line).
postgres_app_role() { # socket-dir
  if [[ ! -s $APP_DB_PASSWORD_FILE ]]; then
    local tmp
    tmp=$(mktemp "$APP_DB_PASSWORD_FILE.XXXXXX")
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$tmp"   # hex: safe in a URL as it is
    ln "$tmp" "$APP_DB_PASSWORD_FILE" 2>/dev/null || true   # the first writer wins
    rm -f "$tmp"
  fi
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$PG_PORT" -U postgres -d postgres \
    -v a="$APP_DB_ROLE" -v f="$APP_DB_PASSWORD_FILE" \
    >>"$(log_file postgres)" 2>&1 <<'SQL' || fail_service postgres "creating the application role failed"
\set ap `cat :'f'`
SELECT format('CREATE ROLE %I LOGIN', :'a') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'a') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L', :'a', :'ap') \gexec
SQL
}

launch_mailpit() {
  mkdir -p "$DATA_DIR/mailpit"
  rotate_log mailpit
  launch mailpit "$TOOLS_DIR/mailpit" --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_PORT" \
    --database "$DATA_DIR/mailpit/mailpit.db" --smtp-auth-accept-any --smtp-auth-allow-insecure \
    --smtp-disable-rdns --disable-version-check --max 0 --max-age 7d
}

ready() { # service: answers AND (for kafka) logged that it started
  case $1 in
    kafka) probe kafka && grep -q 'Kafka Server started' "$(log_file kafka)" ;;
    *) probe "$1" ;;
  esac
}

ensure_search_attributes() {
  local list sa name type
  list=$(timeout 15 "$(temporal_bin)" operator search-attribute list --address "$TEMPORAL_HOST:$TEMPORAL_PORT" \
    --namespace default 2>/dev/null) || { warn "temporal: could not list search attributes"; return 0; }
  for sa in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do
    name=${sa%%=*}; type=${sa#*=}
    [[ $list == *"$name"* ]] && continue
    say "temporal: registering missing search attribute $name ($type)"
    timeout 15 "$(temporal_bin)" operator search-attribute create --address "$TEMPORAL_HOST:$TEMPORAL_PORT" \
      --namespace default --name "$name" --type "$type" >/dev/null || warn "temporal: could not create $name"
  done
}

# Returns 0 if the service needs a launch, 1 if it already answers; dies on remote/blocked.
needs_launch() {
  local svc=$1 host
  host=$(service_host "$svc")
  if probe "$svc"; then
    say "$svc: already running at $(service_addr "$svc")"
    return 1
  fi
  if ! is_local_host "$host"; then
    die "$svc: nothing answers at $(service_addr "$svc") and it is not a local address; this script only starts services on 127.0.0.1 (unset the variable or start that service yourself)"
  fi
  if [[ $svc == mailpit ]] && ! is_local_host "$SMTP_HOST"; then
    die "mailpit: SMTP_URL points at $SMTP_HOST, not a local address; this script only starts services on 127.0.0.1"
  fi
  if running_pid "$svc" >/dev/null; then return 0; fi  # ours, still starting: wait for it
  if port_taken "$svc"; then
    die "$svc: a port of $(service_addr "$svc") is in use by something that does not answer as $svc; free it or point the address variable elsewhere"
  fi
  return 0
}

do_start() {
  local services=("$@") svc pid t0
  ((${#services[@]})) || services=("${ALL_SERVICES[@]}")
  for svc in "${services[@]}"; do valid_service "$svc"; done
  installed || do_install
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
  local to_wait=()
  local -A launched_at=()
  for svc in "${services[@]}"; do
    needs_launch "$svc" || continue
    launched_at[$svc]=$SECONDS
    if pid=$(running_pid "$svc"); then
      say "$svc: process $pid already started, waiting for it"
    else
      say "$svc: starting (log: $(rel "$(log_file "$svc")"))"
      "launch_$svc"
    fi
    to_wait+=("$svc")
  done
  for svc in "${to_wait[@]}"; do
    t0=${launched_at[$svc]}
    until ready "$svc"; do
      # (postgres: pg_ctl returns before the postmaster has written its pid file)
      if ! running_pid "$svc" >/dev/null && [[ $svc != postgres || $((SECONDS - t0)) -ge 5 ]]; then
        fail_service "$svc" "the process exited during startup"
      fi
      ((SECONDS - t0 < START_TIMEOUT)) || fail_service "$svc" "not ready at $(service_addr "$svc") after ${START_TIMEOUT}s"
      sleep 0.3
    done
    case $svc in
      temporal) ensure_search_attributes ;;
    esac
    say "$svc: ready at $(service_addr "$svc") in $((SECONDS - t0))s (pid $(running_pid "$svc" || echo '?'))"
  done
  for svc in "${services[@]}"; do
    case $svc in
      # On every start, so that a cluster started before a role existed gets it too.
      postgres)
        if running_pid postgres >/dev/null; then postgres_setup_roles
        else say "postgres: not started by this script, so the roles $PG_USER and $APP_DB_ROLE must exist there already"; fi ;;
      temporal) say "Temporal UI: http://127.0.0.1:$TEMPORAL_UI_PORT" ;;
      mailpit) say "Mailpit: $MAILPIT_URL" ;;
    esac
  done
}

# ---------------------------------------------------------------------------------------------
# Stop / status / logs / reset
# ---------------------------------------------------------------------------------------------
stop_one() {
  local svc=$1 pid i
  if ! pid=$(running_pid "$svc"); then
    if probe "$svc" 2>/dev/null; then
      say "$svc: not started by this script (answers at $(service_addr "$svc")); leaving it alone"
    else
      say "$svc: not running"
    fi
    return 0
  fi
  say "$svc: stopping pid $pid"
  if [[ $svc == postgres ]]; then
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "$STOP_TIMEOUT" -s >/dev/null 2>&1 || true
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    pid_is_ours "$svc" "$pid" || break
    sleep 0.1
  done
  if pid_is_ours "$svc" "$pid"; then
    warn "$svc: pid $pid did not stop within ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$(pid_file "$svc")"
  say "$svc: stopped"
}

do_stop() {
  local services=("$@") svc i
  ((${#services[@]})) || services=("${ALL_SERVICES[@]}")
  for svc in "${services[@]}"; do valid_service "$svc"; done
  # Reverse order: mailpit, postgres, kafka, temporal.
  for ((i = ${#services[@]} - 1; i >= 0; i--)); do stop_one "${services[i]}"; done
}

do_status() {
  local svc pid state
  for svc in "${ALL_SERVICES[@]}"; do
    if pid=$(running_pid "$svc"); then
      if probe "$svc"; then state=running; else state=starting; fi
    elif probe "$svc" 2>/dev/null; then
      state=running pid=external
    else
      state=stopped pid=-
    fi
    printf '%-9s %-8s pid %-9s %-40s log %s\n' "$svc" "$state" "$pid" "$(service_addr "$svc")" "$(rel "$(log_file "$svc")")"
  done
  printf '%-9s %s\n' "wrapper" "$TOOLS_DIR/temporal-test-server <port>  (Temporal time-skipping test server, spawned by tests)"
  say "Temporal UI: http://127.0.0.1:$TEMPORAL_UI_PORT"
  say "Mailpit:     $MAILPIT_URL"
  if [[ -n $PG_HOME ]]; then say "PostgreSQL data: $PG_DATA (linked from $(rel "$PG_LINK"))"; fi
}

do_logs() {
  [[ $# -ge 1 ]] || die "usage: $0 logs <service> [-f]"
  valid_service "$1"
  local log
  log=$(log_file "$1")
  [[ -f $log ]] || die "no log yet at $log"
  if [[ ${2:-} == -f ]]; then exec tail -n 100 -F "$log"; else tail -n 100 "$log"; fi
}

do_reset() {
  do_stop
  if [[ -n $PG_HOME && -e $PG_HOME ]]; then
    say "deleting $PG_HOME (this stack's PostgreSQL cluster, kept outside the repository)"
    rm_pg_home
  fi
  say "deleting $(rel "$DATA_DIR") (the tool cache $CACHE_ROOT is kept)"
  rm -rf "$DATA_DIR" "$ETC_DIR"
  rm -f "$RUN_DIR"/*.pid
}

# The application role's URL: the owner's server and database, the local password if there is one.
app_database_url() {
  local rest=${MIGRATION_DATABASE_URL#*://} password=
  if [[ -s $APP_DB_PASSWORD_FILE ]]; then password=:$(cat "$APP_DB_PASSWORD_FILE"); fi
  printf 'postgresql://%s%s@%s\n' "$APP_DB_ROLE" "$password" "${rest#*@}"
}

do_env() {
  cat <<EOF
TEMPORAL_ADDRESS=$TEMPORAL_HOST:$TEMPORAL_PORT
KAFKA_BROKERS=$KAFKA_BROKERS
MIGRATION_DATABASE_URL=$MIGRATION_DATABASE_URL
DATABASE_URL=$(app_database_url)
SMTP_URL=$SMTP_URL
MAILPIT_URL=$MAILPIT_URL
TEMPORAL_TEST_SERVER_PATH=$TOOLS_DIR/temporal-test-server
EOF
}

valid_service() {
  case $1 in temporal | kafka | postgres | mailpit) ;; *) die "unknown service '$1' (services: ${ALL_SERVICES[*]})" ;; esac
}

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
  local sub=${1:-help}
  if [[ $# -gt 0 ]]; then shift; fi
  pg_locate
  case $sub in
    install) do_install; say "installed: tools in $(rel "$TOOLS_DIR"), cache in $CACHE_ROOT" ;;
    start) do_start "$@" ;;
    stop) do_stop "$@" ;;
    status) do_status ;;
    logs) do_logs "$@" ;;
    reset) do_reset ;;
    env) do_env ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
