# shellcheck shell=bash
# Shared helpers for scripts/run and scripts/test: find a reachable PostgreSQL and
# Redis, or install (Debian packages) and start private ones under the data folder,
# and stop exactly the stores this script started when it exits.
#
# Sourced, never executed. The caller sets `set -euo pipefail`, then calls
# gw_init MODE ("run" or "test") before anything else.

# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------
GW_MODE=""
GW_ROOT=""
GW_DATA_DIR=""
GW_CHILD_PID=""        # process group leader of the cargo child, while it runs
GW_PG_STARTED=()       # "bindir|datadir" of clusters started by this script
GW_REDIS_STARTED=()    # "port|dir" of Redis servers started by this script
GW_REMOVE_DIRS=()      # throwaway folders removed at exit (test stores)
GW_EXIT_HOOK=""        # optional function the caller wants run first at exit
GW_CLEANED=0
GW_APT_UPDATED=0
GW_LOCKED=0
GW_TEST_DIR=""
GW_HOST=""
GW_PORT=""

# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------
gw_log() { printf '==> %s\n' "$*"; }
gw_note() { printf '    %s\n' "$*"; }
gw_warn() { printf 'warning: %s\n' "$*" >&2; }
gw_die() {
  printf '\nerror: %s\n' "$*" >&2
  exit 1
}

# A URL with its password (if any) replaced by ***, for printing.
gw_redact() {
  local url=$1 rest authority userinfo tail
  [[ $url == *://* ]] || {
    printf '%s' "$url"
    return 0
  }
  rest=${url#*://}
  authority=${rest%%[/?#]*}
  tail=${rest:${#authority}}
  if [[ $authority == *@* ]]; then
    userinfo=${authority%@*}
    if [[ $userinfo == *:* ]]; then
      userinfo="${userinfo%%:*}:***"
    fi
    authority="$userinfo@${authority##*@}"
  fi
  printf '%s://%s%s' "${url%%://*}" "$authority" "$tail"
}

# ---------------------------------------------------------------------------
# Set-up and clean-up
# ---------------------------------------------------------------------------
# gw_init MODE: cd to the repository root, prepare the data folder, install traps.
gw_init() {
  GW_MODE=$1
  GW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
  cd "$GW_ROOT" || exit 1
  GW_DATA_DIR=${GEOWARD_DATA_DIR:-$GW_ROOT/.geoward-data}
  mkdir -p "$GW_DATA_DIR"
  GW_DATA_DIR=$(cd "$GW_DATA_DIR" && pwd -P)
  trap gw_cleanup EXIT
  trap 'gw_on_signal INT 130' INT
  trap 'gw_on_signal TERM 143' TERM
  trap 'gw_on_signal HUP 129' HUP
}

gw_on_signal() {
  trap '' INT TERM HUP
  printf '\n==> caught SIG%s, stopping\n' "$1" >&2
  exit "$2"
}

gw_cleanup() {
  local rc=$? entry
  trap '' INT TERM HUP
  set +e
  if [[ $GW_CLEANED == 1 ]]; then
    return "$rc"
  fi
  GW_CLEANED=1
  gw_stop_child
  if [[ -n $GW_EXIT_HOOK ]]; then
    "$GW_EXIT_HOOK" "$rc"
  fi
  for entry in ${GW_REDIS_STARTED[@]+"${GW_REDIS_STARTED[@]}"}; do
    gw_redis_stop "${entry%%|*}" "${entry#*|}"
  done
  for entry in ${GW_PG_STARTED[@]+"${GW_PG_STARTED[@]}"}; do
    gw_pg_stop "${entry%%|*}" "${entry#*|}"
  done
  for entry in ${GW_REMOVE_DIRS[@]+"${GW_REMOVE_DIRS[@]}"}; do
    rm -rf -- "$entry"
  done
  return "$rc"
}

# gw_run_child CMD...: runs CMD in its own session (so a terminal's Ctrl-C reaches
# only this script, which then stops CMD's whole process group, cargo and the
# programs it started alike) and returns its exit status.
gw_run_child() {
  local rc=0
  setsid "$@" &
  GW_CHILD_PID=$!
  wait "$GW_CHILD_PID" || rc=$?
  GW_CHILD_PID=""
  return "$rc"
}

gw_stop_child() {
  local pid=$GW_CHILD_PID i
  [[ -n $pid ]] || return 0
  GW_CHILD_PID=""
  kill -0 -- "-$pid" 2>/dev/null || return 0
  gw_log "stopping $(ps -o args= -p "$pid" 2>/dev/null | cut -c1-80) (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null
  # Up to 20 s for a graceful exit of the whole group, then SIGKILL what is left.
  for ((i = 0; i < 40; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -KILL -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------
gw_is_root() { [[ $(id -u) == 0 ]]; }

# gw_url_host_port URL DEFAULT_PORT: sets GW_HOST and GW_PORT from a
# postgres://, postgresql://, redis:// or rediss:// URL.
gw_url_host_port() {
  local url=$1 rest authority hostport host port
  rest=${url#*://}
  authority=${rest%%[/?#]*}
  hostport=${authority##*@}
  hostport=${hostport%%,*} # first of several hosts
  if [[ $hostport == \[* ]]; then
    host=${hostport%%]*}
    host=${host#[}
    port=${hostport#*]}
    port=${port#:}
  elif [[ $hostport == *:* ]]; then
    host=${hostport%%:*}
    port=${hostport##*:}
  else
    host=$hostport
    port=""
  fi
  [[ -n $host ]] || host=127.0.0.1
  [[ $port =~ ^[0-9]+$ ]] || port=$2
  GW_HOST=$host
  GW_PORT=$port
}

# gw_tcp_open HOST PORT: true when something accepts TCP connections there.
gw_tcp_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# gw_free_port START: prints the first port from START on that nothing listens on.
gw_free_port() {
  local port
  for ((port = $1; port < $1 + 200; port++)); do
    if ! gw_tcp_open 127.0.0.1 "$port"; then
      printf '%s' "$port"
      return 0
    fi
  done
  gw_die "no free TCP port between $1 and $(($1 + 199)) on 127.0.0.1"
}

# gw_wait_until SECONDS CMD...: retries CMD every 0.5 s; false after SECONDS.
gw_wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

gw_log_tail() {
  if [[ -r $1 ]]; then
    printf -- '--- last lines of %s ---\n' "$1" >&2
    tail -n 25 "$1" >&2
    printf -- '---\n' >&2
  fi
}

# ---------------------------------------------------------------------------
# Reachability
# ---------------------------------------------------------------------------
gw_pg_reachable() {
  local url=$1 isready
  isready=$(command -v pg_isready || true)
  gw_url_host_port "$url" 5432
  if [[ -n $isready ]]; then
    # pg_isready does not log in, so a wrong password still counts as reachable
    # (geoward then fails with the server's own message).
    timeout 5 "$isready" -q -t 3 -d "$url" >/dev/null 2>&1 ||
      timeout 5 "$isready" -q -t 3 -h "$GW_HOST" -p "$GW_PORT" >/dev/null 2>&1
  else
    gw_tcp_open "$GW_HOST" "$GW_PORT"
  fi
}

gw_redis_reachable() {
  local url=$1 out cli
  cli=$(command -v redis-cli || true)
  gw_url_host_port "$url" 6379
  if [[ -n $cli ]]; then
    out=$(timeout 5 "$cli" -h "$GW_HOST" -p "$GW_PORT" ping 2>&1 </dev/null) || true
    # An authentication error still means a Redis answers there.
    [[ $out == *PONG* || $out == *NOAUTH* || $out == *WRONGPASS* || $out == *"Authentication required"* ]]
  else
    gw_tcp_open "$GW_HOST" "$GW_PORT"
  fi
}

# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------
# gw_apt_install PACKAGE...: apt-get update (once) and install, as root or via sudo.
gw_apt_install() {
  local sudo=()
  command -v apt-get >/dev/null 2>&1 ||
    gw_die "apt-get not found; install these packages yourself: $*"
  if ! gw_is_root; then
    command -v sudo >/dev/null 2>&1 ||
      gw_die "installing $* needs root: run as root, install sudo, or install them yourself"
    sudo=(sudo)
  fi
  gw_log "installing Debian packages: $*"
  if [[ $GW_APT_UPDATED == 0 ]]; then
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null ||
      gw_die "apt-get update failed"
    GW_APT_UPDATED=1
  fi
  ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "$@" </dev/null ||
    gw_die "apt-get install $* failed"
}

# Prints the bin folder of the newest installed PostgreSQL server ("" if none).
gw_pg_newest_bindir() {
  local dir best=""
  while IFS= read -r dir; do
    if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
      best=$dir
    fi
  done < <(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V)
  printf '%s' "$best"
}

# gw_ensure_store_packages NEED_PG NEED_REDIS (each 0 or 1)
gw_ensure_store_packages() {
  local pkgs=()
  if [[ $1 == 1 && -z $(gw_pg_newest_bindir) ]]; then
    pkgs+=(postgresql)
  fi
  if [[ $2 == 1 ]] && ! { command -v redis-server && command -v redis-cli; } >/dev/null 2>&1; then
    pkgs+=(redis-server)
  fi
  if ((${#pkgs[@]} > 0)); then
    gw_apt_install "${pkgs[@]}"
  fi
  if [[ $1 == 1 && -z $(gw_pg_newest_bindir) ]]; then
    gw_die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
  fi
  if [[ $2 == 1 ]] && ! command -v redis-server >/dev/null 2>&1; then
    gw_die "redis-server not found on PATH"
  fi
}

# ---------------------------------------------------------------------------
# Private PostgreSQL
# ---------------------------------------------------------------------------
# Runs a PostgreSQL program as the user that owns the cluster: `postgres` when we are
# root (initdb and postgres refuse to run as root), ourselves otherwise. Runs from /,
# since the postgres user may not be allowed into the current folder.
gw_as_pg() {
  if gw_is_root; then
    if command -v runuser >/dev/null 2>&1; then
      (cd / && runuser -u postgres -- "$@")
    else
      local cmd
      printf -v cmd '%q ' "$@"
      (cd / && su -s /bin/sh postgres -c "$cmd")
    fi
  else
    (cd / && "$@")
  fi
}

# gw_pg_prepare_dir DIR: creates DIR for a cluster, owned by the cluster's user.
# False when that user cannot use DIR (e.g. a parent folder it cannot enter).
gw_pg_prepare_dir() {
  mkdir -p "$1" || return 1
  if gw_is_root; then
    id -u postgres >/dev/null 2>&1 ||
      gw_die "the 'postgres' system user does not exist (it comes with Debian's postgresql package)"
    chown postgres:postgres "$1" || return 1
  fi
  chmod 700 "$1" || return 1
  gw_as_pg test -w "$1" -a -x "$1" 2>/dev/null
}

# gw_pg_start DATADIR PORT MODE: initialises the cluster if needed and starts it on
# 127.0.0.1:PORT (TCP only, trust auth, superuser postgres). MODE is run or test.
gw_pg_start() {
  local dir=$1 port=$2 mode=$3 bindir version out durable
  if [[ -s $dir/PG_VERSION ]]; then
    version=$(<"$dir/PG_VERSION")
    bindir=/usr/lib/postgresql/$version/bin
    [[ -x $bindir/pg_ctl ]] ||
      gw_die "$dir holds a PostgreSQL $version cluster, but $bindir/pg_ctl is missing (install postgresql-$version, or move that folder away to start afresh)"
  else
    bindir=$(gw_pg_newest_bindir)
    gw_note "initialising a PostgreSQL cluster in $dir"
    # Built beside DIR and renamed into place, so an interrupted initdb leaves no
    # half-made cluster behind.
    rm -rf -- "$dir.initdb"
    gw_pg_prepare_dir "$dir.initdb" || gw_die "cannot prepare $dir.initdb"
    out=$(gw_as_pg "$bindir/initdb" -D "$dir.initdb" -U postgres --auth=trust \
      --encoding=UTF8 --no-locale 2>&1) || {
      printf '%s\n' "$out" >&2
      gw_die "initdb failed for $dir"
    }
    printf "\ninclude_if_exists = 'geoward.conf'\n" >>"$dir.initdb/postgresql.conf"
    if ! { rmdir "$dir" && mv "$dir.initdb" "$dir"; }; then
      gw_die "cannot move the new cluster $dir.initdb to $dir (is $dir empty?)"
    fi
  fi

  if gw_as_pg "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    gw_note "a PostgreSQL left running from an earlier run uses $dir; stopping it first"
    gw_as_pg "$bindir/pg_ctl" -D "$dir" stop -m fast -w -t 60 >/dev/null 2>&1 ||
      gw_die "could not stop the PostgreSQL running in $dir"
  fi

  durable=on
  [[ $mode == test ]] && durable=off
  # Rewritten at each start: the port may differ from the last run.
  cat >"$dir/geoward.conf" <<EOF
# Written by scripts/lib/stores.sh at each start; edits are lost.
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = $durable
synchronous_commit = $durable
full_page_writes = $durable
EOF
  chmod 644 "$dir/geoward.conf"

  # Registered before starting, so an interruption during start still stops it.
  GW_PG_STARTED+=("$bindir|$dir")
  out=$(gw_as_pg "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 start 2>&1 9>&-) || {
    printf '%s\n' "$out" >&2
    gw_log_tail "$dir/server.log"
    gw_die "PostgreSQL failed to start on port $port (data: $dir)"
  }
  gw_wait_until 30 "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" || {
    gw_log_tail "$dir/server.log"
    gw_die "PostgreSQL on port $port did not become ready within 30 s (data: $dir)"
  }
}

gw_pg_stop() {
  local bindir=$1 dir=$2 pid how=fast
  # Test clusters are thrown away: no need for a clean shutdown.
  [[ $GW_MODE == test ]] && how=immediate
  # An interruption right after pg_ctl launched the server: give it a moment to
  # write its pid file.
  gw_wait_until 3 test -e "$dir/postmaster.pid" || return 0
  gw_log "stopping the private PostgreSQL ($dir)"
  if ! gw_as_pg "$bindir/pg_ctl" -D "$dir" stop -m "$how" -w -t 30 >/dev/null 2>&1; then
    pid=$(head -n 1 "$dir/postmaster.pid" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]]; then
      gw_warn "pg_ctl stop failed; killing postmaster $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
}

# ---------------------------------------------------------------------------
# Private Redis
# ---------------------------------------------------------------------------
# Prints the pid of the redis-server whose pid file is DIR/redis.pid, if it runs.
gw_redis_pid() {
  local pid
  pid=$(cat "$1/redis.pid" 2>/dev/null || true)
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server || return 1
  printf '%s' "$pid"
}

# gw_redis_start DIR PORT MODE: MODE run keeps data (append-only file), test keeps none.
gw_redis_start() {
  local dir=$1 port=$2 mode=$3 aof=no pid
  [[ $mode == run ]] && aof=yes
  mkdir -p "$dir"
  chmod 700 "$dir"
  if pid=$(gw_redis_pid "$dir"); then
    gw_note "a Redis left running from an earlier run uses $dir; stopping it first"
    gw_redis_stop "$port" "$dir" quiet
  fi
  rm -f "$dir/redis.pid"
  GW_REDIS_STARTED+=("$port|$dir")
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save "" \
    --appendonly "$aof" --dir "$dir" --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" >/dev/null 9>&- || {
    gw_log_tail "$dir/redis.log"
    gw_die "redis-server failed to start on port $port (data: $dir)"
  }
  gw_wait_until 30 gw_redis_ping 127.0.0.1 "$port" || {
    gw_log_tail "$dir/redis.log"
    gw_die "Redis on port $port did not become ready within 30 s (data: $dir)"
  }
}

gw_redis_ping() {
  [[ $(redis-cli -h "$1" -p "$2" ping 2>/dev/null </dev/null) == PONG ]]
}

gw_redis_stop() {
  local port=$1 dir=$2 pid
  # An interruption right after redis-server forked: give it a moment to write its
  # pid file (not for stale servers, which have one if they run).
  if [[ ${3:-} != quiet ]]; then
    gw_wait_until 3 gw_redis_pid "$dir" || return 0
  fi
  pid=$(gw_redis_pid "$dir") || return 0
  [[ ${3:-} == quiet ]] || gw_log "stopping the private Redis (port $port, $dir)"
  # SIGTERM is Redis's graceful shutdown: it flushes the append-only file when
  # there is one and writes no snapshot (no save points are configured).
  kill -TERM "$pid" 2>/dev/null || return 0
  if ! gw_wait_until 15 gw_not_running "$pid"; then
    gw_warn "Redis $pid did not stop; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

gw_not_running() { ! kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------
# Store selection: use what is reachable, else start private stores.
# ---------------------------------------------------------------------------
# gw_pg_ensure_database URL: creates URL's database when it does not exist yet.
# Needs psql; without it, or when the server refuses, leaves it to geoward to fail.
gw_pg_ensure_database() {
  local url=$1 base query="" rest scheme authority db psql maint exists
  psql=$(command -v psql || true)
  if [[ -z $psql ]]; then
    gw_warn "psql not found: not checking that the database of $(gw_redact "$url") exists"
    return 0
  fi
  base=${url%%\?*}
  [[ $url == *\?* ]] && query="?${url#*\?}"
  scheme=${base%%://*}
  rest=${base#*://}
  authority=${rest%%/*}
  db=""
  [[ $rest == */* ]] && db=${rest#*/}
  db=${db%/}
  [[ -n $db ]] || return 0
  for maint in postgres template1; do
    if exists=$("$psql" "$scheme://$authority/$maint$query" -X -A -t -q -v ON_ERROR_STOP=1 \
      -v db="$db" 2>/dev/null <<'SQL'
SELECT count(*) FROM pg_database WHERE datname = :'db';
SQL
    ); then
      if [[ $exists == 0 ]]; then
        gw_note "creating database \"$db\""
        "$psql" "$scheme://$authority/$maint$query" -X -q -v ON_ERROR_STOP=1 -v db="$db" <<'SQL' ||
CREATE DATABASE :"db";
SQL
          gw_warn "could not create database \"$db\"; geoward will report why it cannot connect"
      fi
      return 0
    fi
  done
  gw_warn "could not log in to $(gw_redact "$url") with psql to check that database \"$db\" exists"
}

# gw_use_or_start_pg URL_VAR DEFAULT_URL: when the URL in variable URL_VAR (or
# DEFAULT_URL) is reachable, keeps it; else starts a private cluster and points
# URL_VAR at it. Exports URL_VAR either way.
gw_use_or_start_pg() {
  local var=$1 url dir port db
  url=${!var:-$2}
  if gw_pg_reachable "$url"; then
    gw_log "PostgreSQL: using $(gw_redact "$url") ($var, reachable)"
    if [[ $GW_MODE == run ]]; then
      gw_pg_ensure_database "$url"
    fi
    export "$var=$url"
    return 0
  fi
  gw_log "PostgreSQL: $(gw_redact "$url") ($var) is not reachable; starting a private one"
  gw_prepare_private_stores
  gw_ensure_store_packages 1 0
  if [[ $GW_MODE == run ]]; then
    dir=$GW_DATA_DIR/postgres
    if ! gw_pg_prepare_dir "$dir"; then
      # The postgres user cannot reach the repository (e.g. it lives under /root).
      dir=/var/lib/postgresql/geoward-$(printf '%s' "$GW_DATA_DIR" | cksum | cut -d' ' -f1)
      gw_pg_prepare_dir "$dir" || gw_die "cannot prepare a PostgreSQL data folder ($dir)"
      printf '%s\n' "$dir" >"$GW_DATA_DIR/postgres.location"
    fi
    db=geoward
  else
    dir=$GW_TEST_DIR/postgres
    if ! gw_pg_prepare_dir "$dir"; then
      dir=$(mktemp -d /tmp/geoward-test-pg.XXXXXX)
      chmod 755 "$dir"
      GW_REMOVE_DIRS+=("$dir")
      gw_pg_prepare_dir "$dir/data" || gw_die "cannot prepare a PostgreSQL data folder ($dir)"
      dir=$dir/data
    fi
    db=postgres
  fi
  port=$(gw_free_port 55432)
  gw_pg_start "$dir" "$port" "$GW_MODE"
  url=postgres://postgres@127.0.0.1:$port/$db
  if [[ $db != postgres ]]; then
    gw_pg_ensure_database "$url"
  fi
  gw_note "started PostgreSQL on 127.0.0.1:$port (data: $dir, log: $dir/server.log)"
  export "$var=$url"
}

# gw_use_or_start_redis URL_VAR DEFAULT_URL: as gw_use_or_start_pg, for Redis.
gw_use_or_start_redis() {
  local var=$1 url dir port
  url=${!var:-$2}
  if gw_redis_reachable "$url"; then
    gw_log "Redis: using $(gw_redact "$url") ($var, reachable)"
    export "$var=$url"
    return 0
  fi
  gw_log "Redis: $(gw_redact "$url") ($var) is not reachable; starting a private one"
  gw_prepare_private_stores
  gw_ensure_store_packages 0 1
  if [[ $GW_MODE == run ]]; then
    dir=$GW_DATA_DIR/redis
  else
    dir=$GW_TEST_DIR/redis
  fi
  port=$(gw_free_port 56379)
  gw_redis_start "$dir" "$port" "$GW_MODE"
  url=redis://127.0.0.1:$port
  gw_note "started Redis on 127.0.0.1:$port (data: $dir, log: $dir/redis.log)"
  export "$var=$url"
}

# ---------------------------------------------------------------------------
# Mode-specific wrappers
# ---------------------------------------------------------------------------
# Called before starting a private store: scripts/run locks its data folder (one
# scripts/run per folder, as its stores keep state there); scripts/test makes its
# throwaway folder.
gw_prepare_private_stores() {
  if [[ $GW_MODE == run ]]; then
    [[ $GW_LOCKED == 1 ]] && return 0
    exec 9>"$GW_DATA_DIR/.lock"
    flock -n 9 || gw_die "another scripts/run is using $GW_DATA_DIR (or a geoward it started still runs)"
    GW_LOCKED=1
  elif [[ -z $GW_TEST_DIR ]]; then
    gw_make_test_dir
  fi
}

# Test stores live in a throwaway folder per run: $DATA_DIR/test-XXXXXX.
gw_make_test_dir() {
  local old pid
  # Remove folders of earlier test runs that died without cleaning up.
  for old in "$GW_DATA_DIR"/test-*; do
    [[ -d $old ]] || continue
    pid=$(cat "$old/owner.pid" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      continue
    fi
    gw_stale_test_dir_cleanup "$old"
  done
  GW_TEST_DIR=$(mktemp -d "$GW_DATA_DIR/test-XXXXXX")
  chmod 755 "$GW_TEST_DIR"
  printf '%s\n' "$$" >"$GW_TEST_DIR/owner.pid"
  GW_REMOVE_DIRS+=("$GW_TEST_DIR")
}

gw_stale_test_dir_cleanup() {
  local old=$1 version
  if [[ -s $old/postgres/PG_VERSION && -e $old/postgres/postmaster.pid ]]; then
    version=$(<"$old/postgres/PG_VERSION")
    gw_as_pg "/usr/lib/postgresql/$version/bin/pg_ctl" -D "$old/postgres" stop -m immediate -w >/dev/null 2>&1 || true
  fi
  gw_redis_stop 0 "$old/redis" quiet
  rm -rf -- "$old"
}

# gw_dry_run_report URL_VAR REDIS_VAR: proves the stores answer (GEOWARD_SCRIPTS_DRY_RUN=1).
gw_dry_run_report() {
  local pg_var=$1 redis_var=$2
  gw_log "dry run (GEOWARD_SCRIPTS_DRY_RUN=1): skipping the cargo steps"
  printf '%s=%s\n%s=%s\n' "$pg_var" "${!pg_var}" "$redis_var" "${!redis_var}"
  if command -v psql >/dev/null 2>&1; then
    psql "${!pg_var}" -X -c 'select 1'
  else
    gw_warn "psql not found; PostgreSQL not queried"
  fi
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -u "${!redis_var}" ping
  else
    gw_warn "redis-cli not found; Redis not pinged"
  fi
  if [[ ${GEOWARD_SCRIPTS_DRY_RUN_HOLD:-0} != 0 ]]; then
    gw_log "holding for ${GEOWARD_SCRIPTS_DRY_RUN_HOLD} s (GEOWARD_SCRIPTS_DRY_RUN_HOLD)"
    gw_run_child sleep "$GEOWARD_SCRIPTS_DRY_RUN_HOLD"
  fi
}

# Makes cargo available, or stops with how to get it.
gw_require_cargo() {
  if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
    export PATH
  fi
  command -v cargo >/dev/null 2>&1 || gw_die "cargo not found: install the Rust toolchain: https://rustup.rs
  (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), then open a new shell"
}
