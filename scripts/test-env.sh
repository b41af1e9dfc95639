#!/usr/bin/env bash
# test-env.sh: run one command against throwaway real services (PostgreSQL
# with SSL, the Secret Service on a private D-Bus, sshd), then tear them down.
#
# Usage: scripts/test-env.sh [--services postgres,keyring,ssh] [--sample-data]
#                            [--keep-dir] [--] COMMAND [ARGS...]
#
# The services' coordinates reach COMMAND as TUSK_TEST_* variables (see
# docs/TEST-ENV.md).  The exit status is COMMAND's.  Everything lives in one
# temporary directory under /tmp; on exit -- success, failure, INT or TERM --
# every process this script started is stopped and the directory removed.
# A service that does not come up is a hard error, never a silent skip.
#
# Processes: each daemon runs in its own session (setsid, or pg_ctl's own
# setsid), so a terminal's Ctrl-C reaches only COMMAND and this script, and
# teardown can signal a daemon's whole process group.  PID 1 in some
# containers never reaps orphans, so "alive" below means "exists and is not a
# zombie".
#
# Signals: COMMAND runs in the background of this shell (with INT and QUIT
# restored to their defaults and stdin passed through) so that a signal sent
# to this script alone is handled at once: TERM and HUP are forwarded to
# COMMAND, INT too unless it came from our terminal (which has sent it to
# COMMAND already), and teardown starts as soon as COMMAND has exited.
# Functions run from traps look unreachable to shellcheck:
# shellcheck disable=SC2317
set -euo pipefail

readonly PGBIN=/usr/lib/postgresql/15/bin
readonly SSHD=/usr/sbin/sshd
readonly SSH_USER=tusk-ssh
# Cross-run state for the shared ssh user (root only): a mutex, the list of
# live runs and the password they share (see ssh_user_acquire).
readonly SSH_STATE=/run/tusk-test-env
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly script_dir

t_start=$EPOCHREALTIME

log() { printf 'test-env: %s\n' "$*" >&2; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/test-env.sh [OPTIONS] [--] COMMAND [ARGS...]
  --services LIST  comma list of postgres,keyring,ssh (default: all three)
  --sample-data    load scripts/sample-data.sql into database tusk_sample and
                   export PGHOST/PGPORT/PGUSER/PGDATABASE for COMMAND
  --keep-dir       keep the temporary directory and print its path
Runs COMMAND with TUSK_TEST_* variables pointing at the started services
(docs/TEST-ENV.md) and exits with COMMAND's status.
EOF
}

# ---------------------------------------------------------------- options
services=postgres,keyring,ssh
sample_data=0
keep_dir=0
while [ $# -gt 0 ]; do
  case $1 in
    --services) [ $# -ge 2 ] || { usage; exit 2; }; services=$2; shift 2 ;;
    --services=*) services=${1#*=}; shift ;;
    --sample-data) sample_data=1; shift ;;
    --keep-dir) keep_dir=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) log "unknown option $1"; usage; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { log "no COMMAND given"; usage; exit 2; }

want_pg=0 want_keyring=0 want_ssh=0
IFS=, read -r -a service_list <<<"$services"
for s in "${service_list[@]}"; do
  case $s in
    postgres) want_pg=1 ;;
    keyring) want_keyring=1 ;;
    ssh) want_ssh=1 ;;
    '') ;;
    *) log "unknown service '$s' (known: postgres,keyring,ssh)"; exit 2 ;;
  esac
done
if [ $sample_data = 1 ] && [ $want_pg = 0 ]; then
  log "--sample-data needs the postgres service"
  exit 2
fi

is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1
if [ $want_ssh = 1 ] && [ $is_root = 0 ]; then
  log "ssh: needs root: it creates the user $SSH_USER and sets its password" \
    "(sshd password login for another user is impossible otherwise)."
  log "ssh: run as root, or pass --services postgres,keyring"
  exit 1
fi

# The caller's PG* variables must not steer our own initdb/pg_ctl/psql calls,
# but COMMAND gets them back untouched.
caller_pg=()
for v in $(compgen -e); do
  if [[ $v == PG* ]]; then
    caller_pg+=("$v=${!v}")
    unset "$v"
  fi
done

# --------------------------------------------------------------- helpers
rand_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# alive PID: the process exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# wait_for SECONDS CMD...: poll CMD every 20 ms until it succeeds.
wait_for() {
  local deadline=$((${EPOCHREALTIME/./} + ${1}000000))
  shift
  until "$@"; do
    [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# stop_group PID: TERM the process group led by PID, wait up to 5 s, then
# KILL.  The daemons here are session leaders, so PGID == PID.
stop_group() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || return 0
  if ! wait_for 5 eval "! alive $pid"; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    wait_for 2 eval "! alive $pid" || true
  fi
  kill -KILL -- "-$pid" 2>/dev/null || true # stragglers in the group
}

# A port is taken if any TCP socket (v4 or v6) has it as its local port.
port_taken() {
  local hex
  hex=$(printf '%04X' "$1")
  grep -q ":$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# pick_port: a random free port below Linux's ephemeral range.  Another
# process can still take it before our server binds; the callers retry.
picked_ports=" "
pick_port() {
  local p _
  for _ in $(seq 200); do
    p=$((10000 + (SRANDOM % 22000)))
    [[ $picked_ports == *" $p "* ]] && continue
    port_taken "$p" && continue
    picked_ports+="$p "
    echo "$p"
    return 0
  done
  return 1
}

listening() { # listening PORT: something listens on 127.0.0.1:PORT
  grep -q "0100007F:$(printf '%04X' "$1") 00000000:0000 0A" /proc/net/tcp
}

fail_service() { # fail_service NAME LOGFILE MESSAGE...
  local name=$1 logfile=$2
  shift 2
  log "$name: failed to start: $*"
  if [ -n "$logfile" ] && [ -s "$logfile" ]; then
    log "$name: last lines of $logfile:"
    tail -n 25 "$logfile" | sed 's/^/    /' >&2
  fi
  exit 1
}

# --------------------------------------------------------------- teardown
DIR=
cmd_pid=
initdb_pid=
dbus_pid=
keyring_pid=
ssh_registered=0
cleanup() {
  local status=$?
  set +e
  trap '' INT TERM
  if [ -n "$cmd_pid" ] && alive "$cmd_pid"; then
    kill -TERM "$cmd_pid" 2>/dev/null
    wait_for 5 eval "! alive $cmd_pid" || kill -KILL "$cmd_pid" 2>/dev/null
  fi
  if [ -n "$initdb_pid" ]; then
    kill -TERM "$initdb_pid" 2>/dev/null
    wait "$initdb_pid" 2>/dev/null
  fi
  if [ -n "$DIR" ]; then
    [ -x "$DIR/sshctl" ] && "$DIR/sshctl" stop >/dev/null 2>&1
    [ -x "$DIR/pgctl" ] && "$DIR/pgctl" stop immediate >/dev/null 2>&1
    # If pg_ctl could not stop it, kill the postmaster's group outright.
    if [ -f "$DIR/pg/data/postmaster.pid" ]; then
      stop_group "$(head -n 1 "$DIR/pg/data/postmaster.pid")"
    fi
  fi
  stop_group "$keyring_pid"
  # A daemon that keyringctl restarted, and any Secret Service that D-Bus
  # activation started on this bus (in dbus-daemon's process group).
  [ -x "$DIR/keyringctl" ] && "$DIR/keyringctl" stop >/dev/null 2>&1
  stop_group "$dbus_pid"
  [ "$ssh_registered" = 1 ] && ssh_user_release
  if [ -n "$DIR" ]; then
    if [ "$keep_dir" = 1 ]; then
      log "kept $DIR"
    else
      rm -rf "$DIR"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
# Until COMMAND runs, INT and TERM just end the script (through cleanup).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

DIR=$(mktemp -d /tmp/tusk-test-env.XXXXXX)
chmod 0755 "$DIR" # the postgres and tusk-ssh users read files below it
mkdir -p "$DIR/ssl"

# ------------------------------------------------------------- postgres
# run_pg CMD...: a PostgreSQL binary as the cluster owner, from a directory
# that owner can enter.
pg_owner=$(id -un)
[ $is_root = 1 ] && pg_owner=postgres
run_pg() {
  if [ $is_root = 1 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

make_certs() {
  local ssl=$DIR/ssl
  (
    set -e
    cd "$ssl"
    umask 077
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 7 \
      -subj "/CN=Tusk Test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -new "${ec[@]}" -keyout server.key -out server.csr \
      -subj "/CN=localhost"
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
      -set_serial "0x$(rand_hex)" -days 7 -out server.crt -extfile <(printf '%s\n' \
        "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        "basicConstraints=CA:FALSE" "extendedKeyUsage=serverAuth")
    openssl req -new "${ec[@]}" -keyout client.key -out client.csr \
      -subj "/CN=tusk_cert"
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key \
      -set_serial "0x$(rand_hex)" -days 7 -out client.crt -extfile <(printf '%s\n' \
        "basicConstraints=CA:FALSE" "extendedKeyUsage=clientAuth")
    rm -f server.csr client.csr
    chmod 0644 ca.crt server.crt client.crt
    chmod 0600 ca.key server.key client.key
    [ $is_root = 1 ] && chown postgres: server.key
    true
  ) >"$DIR/ssl/openssl.log" 2>&1
}

write_pgctl() {
  cat >"$DIR/pgctl" <<EOF
#!/usr/bin/env bash
# pgctl start|stop|restart|status [smart|fast|immediate]: control this
# run's PostgreSQL server as its owner ($pg_owner).  Generated by
# scripts/test-env.sh; waits until the action is complete.
set -eu
case "\${1:-}" in
  start | stop | restart | status) ;;
  *) echo "usage: \$0 start|stop|restart|status [smart|fast|immediate]" >&2; exit 2 ;;
esac
for v in \$(compgen -e); do [[ \$v == PG* ]] && unset "\$v"; done
cd /
cmd=($PGBIN/pg_ctl -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 30 \\
  -s -m "\${2:-fast}" "\$1")
if [ "\$(id -u)" -eq 0 ] && [ $is_root = 1 ]; then
  exec runuser -u postgres -- "\${cmd[@]}"
fi
exec "\${cmd[@]}"
EOF
  chmod 0755 "$DIR/pgctl"
}

init_postgres() {
  local pg=$DIR/pg data=$DIR/pg/data sock=$DIR/pg/socket
  mkdir -p "$pg" "$sock"
  chmod 0755 "$pg" "$sock"
  [ $is_root = 1 ] && chown postgres: "$pg" "$sock"
  : >"$pg/postgres.log"
  [ $is_root = 1 ] && chown postgres: "$pg/postgres.log"

  # initdb, the slow part (about 1.5 s), runs in the background while the
  # certificates are made and the other services start; start_postgres
  # waits for it.
  run_pg "$PGBIN/initdb" -D "$data" -U tusk -A trust -E UTF8 \
    --locale=C.UTF-8 --no-sync --no-instructions >"$pg/initdb.log" 2>&1 &
  initdb_pid=$!
  make_certs || fail_service postgres "$DIR/ssl/openssl.log" "openssl failed"
}

start_postgres() {
  local pg=$DIR/pg data=$DIR/pg/data sock=$DIR/pg/socket port _
  wait "$initdb_pid" || fail_service postgres "$pg/initdb.log" "initdb failed"
  initdb_pid=

  cat >"$data/pg_hba.conf" <<EOF
# Generated by scripts/test-env.sh.  First match wins.
# TYPE  DATABASE USER       ADDRESS        METHOD
local   all      tusk                      trust
local   all      tusk_pw                   scram-sha-256
hostssl all      tusk_cert  127.0.0.1/32   cert clientcert=verify-full
host    all      tusk_pw    127.0.0.1/32   scram-sha-256
host    all      tusk       127.0.0.1/32   trust
local   all      all                       reject
host    all      all        0.0.0.0/0      reject
host    all      all        ::/0           reject
EOF
  write_pgctl
  for _ in 1 2 3 4 5; do
    port=$(pick_port) || fail_service postgres "" "no free port"
    cat >"$data/postgresql.auto.conf" <<EOF
# Generated by scripts/test-env.sh.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 50
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = on
ssl_cert_file = '$DIR/ssl/server.crt'
ssl_key_file = '$DIR/ssl/server.key'
ssl_ca_file = '$DIR/ssl/ca.crt'
password_encryption = 'scram-sha-256'
log_connections = on
EOF
    "$DIR/pgctl" start >>"$pg/postgres.log" 2>&1 && break
    grep -q 'Address already in use' "$pg/postgres.log" ||
      fail_service postgres "$pg/postgres.log" "pg_ctl start failed"
    log "postgres: port $port was taken, retrying"
    port=
  done
  [ -n "$port" ] || fail_service postgres "$pg/postgres.log" "no port could be bound"

  local pw
  pw=$(rand_hex)
  {
    cat <<'EOF'
CREATE ROLE tusk_pw LOGIN PASSWORD :'pw';
CREATE ROLE tusk_cert LOGIN;
CREATE DATABASE tusk_test OWNER tusk;
\connect tusk_test
GRANT CREATE ON SCHEMA public TO tusk_pw, tusk_cert;
EOF
    if [ $sample_data = 1 ]; then
      cat <<EOF
CREATE DATABASE tusk_sample OWNER tusk;
\\connect tusk_sample
\\i '$script_dir/sample-data.sql'
GRANT USAGE ON SCHEMA public TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC;
EOF
    fi
  } | (cd / && "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -v "pw=$pw" -h "$sock" \
    -p "$port" -U tusk -d postgres) >"$pg/setup.log" 2>&1 ||
    fail_service postgres "$pg/setup.log" "creating roles and databases failed"

  exports+=(
    TUSK_TEST_PGHOST=127.0.0.1
    "TUSK_TEST_PGPORT=$port"
    "TUSK_TEST_PGSOCKET=$sock"
    TUSK_TEST_PGDATABASE=tusk_test
    TUSK_TEST_PGUSER_TRUST=tusk
    TUSK_TEST_PGUSER_PASSWORD=tusk_pw
    "TUSK_TEST_PGPASSWORD=$pw"
    TUSK_TEST_PGUSER_CERT=tusk_cert
    "TUSK_TEST_SSL_ROOT_CERT=$DIR/ssl/ca.crt"
    "TUSK_TEST_SSL_CLIENT_CERT=$DIR/ssl/client.crt"
    "TUSK_TEST_SSL_CLIENT_KEY=$DIR/ssl/client.key"
    "TUSK_TEST_PGCTL=$DIR/pgctl"
    "TUSK_TEST_PGDATA=$data"
  )
  if [ $sample_data = 1 ]; then
    exports+=(PGHOST=127.0.0.1 "PGPORT=$port" PGUSER=tusk PGDATABASE=tusk_sample)
  fi
  summary+=("postgres 127.0.0.1:$port")
}

# -------------------------------------------------------------- keyring
# A private session bus and gnome-keyring-daemon with a private HOME and XDG
# directories, so nothing touches the caller's keyring.
start_keyring() {
  local k=$DIR/keyring
  mkdir -p "$k/home" "$k/data/keyrings" "$k/config" "$k/cache" "$k/run"
  chmod 0700 "$k" "$k/run" "$k/data/keyrings"
  local addr="unix:path=$k/bus"
  local kenv=(env -u DBUS_SESSION_BUS_ADDRESS -u DISPLAY -u WAYLAND_DISPLAY
    "HOME=$k/home" "XDG_DATA_HOME=$k/data" "XDG_CONFIG_HOME=$k/config"
    "XDG_CACHE_HOME=$k/cache" "XDG_RUNTIME_DIR=$k/run")

  (cd /; setsid "${kenv[@]}" dbus-daemon --session --nofork --nopidfile \
    --address="$addr" </dev/null >"$k/dbus.log" 2>&1 &
    echo $! >"$k/dbus.pid")
  dbus_pid=$(<"$k/dbus.pid")
  wait_for 10 test -S "$k/bus" ||
    fail_service keyring "$k/dbus.log" "dbus-daemon did not create $k/bus"

  # --unlock reads the password from stdin and creates the "login" keyring
  # with it; the "default" file makes it the target of the default alias.
  printf '%s' "$(rand_hex)" >"$k/password"
  chmod 0600 "$k/password"
  printf 'login' >"$k/data/keyrings/default"
  (cd /; setsid "${kenv[@]}" "DBUS_SESSION_BUS_ADDRESS=$addr" \
    gnome-keyring-daemon --foreground --unlock --components=secrets \
    <"$k/password" >"$k/keyring.log" 2>&1 &
    echo $! >"$k/keyring.pid")
  keyring_pid=$(<"$k/keyring.pid")

  has_secrets_owner() {
    alive "$keyring_pid" || return 0 # stop waiting; checked below
    DBUS_SESSION_BUS_ADDRESS=$addr dbus-send --session --print-reply \
      --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
      string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'
  }
  if ! wait_for 10 has_secrets_owner || ! alive "$keyring_pid"; then
    fail_service keyring "$k/keyring.log" \
      "gnome-keyring-daemon did not own org.freedesktop.secrets"
  fi

  # The real check: a round trip through the default collection, as
  # libsecret's SECRET_COLLECTION_DEFAULT does it, with no prompt.
  local probe got
  probe=$(rand_hex)
  {
    printf '%s' "$probe" | DBUS_SESSION_BUS_ADDRESS=$addr timeout 10 \
      secret-tool store --label='tusk test-env probe' tusk-test-env probe &&
      got=$(DBUS_SESSION_BUS_ADDRESS=$addr timeout 10 \
        secret-tool lookup tusk-test-env probe) &&
      [ "$got" = "$probe" ] &&
      DBUS_SESSION_BUS_ADDRESS=$addr timeout 10 \
        secret-tool clear tusk-test-env probe
  } >>"$k/keyring.log" 2>&1 ||
    fail_service keyring "$k/keyring.log" \
      "store/lookup/clear in the default collection failed"

  write_keyringctl "$addr" "${kenv[@]}"
  exports+=("DBUS_SESSION_BUS_ADDRESS=$addr" TUSK_TEST_KEYRING=1
    "TUSK_TEST_KEYRINGCTL=$DIR/keyringctl")
  summary+=("keyring")
}

# write_keyringctl ADDRESS ENV...: the control script of this run's
# gnome-keyring-daemon, for fault tests (a daemon killed mid-session).
write_keyringctl() {
  local addr=$1
  shift
  local envq
  envq=$(printf '%q ' "$@")
  cat >"$DIR/keyringctl" <<EOF
#!/usr/bin/env bash
# keyringctl stop|kill|start|restart|status: control this run's
# gnome-keyring-daemon.  Generated by scripts/test-env.sh.  stop kills it
# with SIGKILL (a crash, not a clean exit), and with it any Secret Service
# that D-Bus activation started on this bus meanwhile, and waits until the
# name has no owner; kill only sends the SIGKILL and returns at once; start
# runs a new one that unlocks the same login keyring, and returns once it
# owns org.freedesktop.secrets.
set -u
k="$DIR/keyring"
pidfile="\$k/keyring.pid"
dbus_pid=$dbus_pid
alive() {
  local s
  s=\$(cat "/proc/\$1/stat" 2>/dev/null) || return 1
  s=\${s##*) }
  [ "\${s%% *}" != Z ]
}
owner_pid() { # the pid owning org.freedesktop.secrets, if any
  DBUS_SESSION_BUS_ADDRESS=$addr dbus-send --session --print-reply \\
    --dest=org.freedesktop.DBus / \\
    org.freedesktop.DBus.GetConnectionUnixProcessID \\
    string:org.freedesktop.secrets 2>/dev/null | sed -n 's/^ *uint32 //p'
}
owned() { [ -n "\$(owner_pid)" ]; }
running() {
  [ -s "\$pidfile" ] && alive "\$(<"\$pidfile")" &&
    [ "\$(owner_pid)" = "\$(<"\$pidfile")" ]
}
wait_until() { # wait_until CMD...: up to 10 s
  local i
  for i in \$(seq 500); do "\$@" && return 0; sleep 0.02; done
  return 1
}
stop() {
  local pid c
  if [ -s "\$pidfile" ]; then
    pid=\$(<"\$pidfile")
    alive "\$pid" && kill -KILL -- "-\$pid" "\$pid" 2>/dev/null
  fi
  # Activated services run in dbus-daemon's process group.
  for c in \$(pgrep -g "\$dbus_pid"); do
    [ "\$c" != "\$dbus_pid" ] && kill -KILL "\$c" 2>/dev/null
  done
  wait_until eval '! owned' || { echo "org.freedesktop.secrets is still owned" >&2; return 1; }
}
start() {
  running && return 0
  stop >/dev/null 2>&1
  (cd /; setsid $envq"DBUS_SESSION_BUS_ADDRESS=$addr" \\
    gnome-keyring-daemon --foreground --unlock --components=secrets \\
    <"\$k/password" >>"\$k/keyring.log" 2>&1 &
    echo \$! >"\$pidfile")
  wait_until running && return 0
  echo "gnome-keyring-daemon did not own org.freedesktop.secrets; see \$k/keyring.log" >&2
  return 1
}
case "\${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) [ -s "\$pidfile" ] && kill -KILL "\$(<"\$pidfile")" 2>/dev/null; true ;;
  restart) stop && start ;;
  status) running && echo "gnome-keyring-daemon running (pid \$(<"\$pidfile"))" ;;
  *) echo "usage: \$0 start|stop|kill|restart|status" >&2; exit 2 ;;
esac
EOF
  chmod 0755 "$DIR/keyringctl"
}

# ------------------------------------------------------------------ ssh
# The user tusk-ssh is shared by all runs on the machine, and so is its
# password: the first of several concurrent runs sets a new random one and
# later runs reuse it (a second chpasswd would break the first run's
# password logins).  Runs register under $SSH_STATE/runs; the last one out
# locks the account again.
ssh_lock() {
  mkdir -p "$SSH_STATE/runs"
  chmod 0700 "$SSH_STATE"
  exec {ssh_lock_fd}>"$SSH_STATE/lock"
  flock -w 30 "$ssh_lock_fd" || fail_service ssh "" "timed out on $SSH_STATE/lock"
}
ssh_unlock() { exec {ssh_lock_fd}>&-; }

my_start_time() { # start time of PID (to tell a reused PID apart)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  read -r -a f <<<"$stat"
  echo "${f[19]}"
}

ssh_other_runs() { # prune dead runs; true if another live run remains
  local f pid others=1
  for f in "$SSH_STATE/runs"/*; do
    [ -e "$f" ] || continue
    pid=${f##*/}
    if [ "$pid" != $$ ] && alive "$pid" &&
      [ "$(my_start_time "$pid")" = "$(<"$f")" ]; then
      others=0
    elif [ "$pid" != $$ ]; then
      rm -f "$f"
    fi
  done
  return $others
}

ssh_user_acquire() {
  ssh_lock
  if ! id -u "$SSH_USER" >/dev/null 2>&1; then
    useradd --system -m -s /bin/bash -c "Tusk test-env ssh user" "$SSH_USER" \
      >"$DIR/ssh/useradd.log" 2>&1 ||
      fail_service ssh "$DIR/ssh/useradd.log" "useradd $SSH_USER failed"
  fi
  if ssh_other_runs && [ -s "$SSH_STATE/password" ]; then
    ssh_password=$(<"$SSH_STATE/password")
  else
    ssh_password=$(rand_hex)
    printf '%s:%s\n' "$SSH_USER" "$ssh_password" | chpasswd ||
      fail_service ssh "" "chpasswd for $SSH_USER failed"
    (umask 077 && printf '%s' "$ssh_password" >"$SSH_STATE/password")
  fi
  my_start_time $$ >"$SSH_STATE/runs/$$"
  ssh_registered=1
  ssh_unlock
}

ssh_user_release() {
  ssh_lock
  rm -f "$SSH_STATE/runs/$$"
  if ! ssh_other_runs; then
    usermod -p '!' "$SSH_USER" >/dev/null 2>&1
    rm -f "$SSH_STATE/password"
  fi
  ssh_registered=0
  ssh_unlock
}

write_sshctl() {
  cat >"$DIR/sshctl" <<EOF
#!/usr/bin/env bash
# sshctl start|stop|restart|status: control this run's sshd.  Generated by
# scripts/test-env.sh; start returns once sshd listens, stop once it is gone
# (with its per-connection processes).
set -u
conf="$DIR/ssh/sshd_config"
pidfile="$DIR/ssh/sshd.pid"
log="$DIR/ssh/sshd.log"
alive() {
  local s
  s=\$(cat "/proc/\$1/stat" 2>/dev/null) || return 1
  s=\${s##*) }
  [ "\${s%% *}" != Z ]
}
running() { [ -s "\$pidfile" ] && alive "\$(<"\$pidfile")"; }
port=\$(sed -n 's/^Port //p' "\$conf")
listening() {
  grep -q "0100007F:\$(printf '%04X' "\$port") 00000000:0000 0A" /proc/net/tcp
}
start() {
  running && return 0
  rm -f "\$pidfile"
  (cd /; setsid "$SSHD" -D -f "\$conf" -E "\$log" </dev/null >/dev/null 2>&1 &
    echo \$! >"\$pidfile.launch")
  local pid i
  pid=\$(<"\$pidfile.launch")
  rm -f "\$pidfile.launch"
  for i in \$(seq 500); do
    alive "\$pid" || { echo "sshd exited; see \$log" >&2; return 1; }
    listening && [ -s "\$pidfile" ] && return 0
    sleep 0.02
  done
  echo "sshd did not listen on port \$port within 10 s" >&2
  kill -KILL "\$pid" 2>/dev/null
  return 1
}
stop() {
  local pid c i
  running || { rm -f "\$pidfile"; return 0; }
  pid=\$(<"\$pidfile")
  # Per-connection sshd processes run in sessions of their own.
  for c in \$(pgrep -P "\$pid"); do kill -TERM -- "-\$c" "\$c" 2>/dev/null; done
  kill -TERM "\$pid" 2>/dev/null
  for _ in \$(seq 250); do alive "\$pid" || break; sleep 0.02; done
  alive "\$pid" && kill -KILL "\$pid" 2>/dev/null
  rm -f "\$pidfile"
  return 0
}
case "\${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop && start ;;
  status) running && echo "sshd running (pid \$(<"\$pidfile"), port \$port)" ;;
  *) echo "usage: \$0 start|stop|restart|status" >&2; exit 2 ;;
esac
EOF
  chmod 0755 "$DIR/sshctl"
}

start_ssh() {
  local s=$DIR/ssh port _
  mkdir -p "$s"
  [ -d /run/sshd ] || mkdir -m 0755 /run/sshd # sshd's privsep directory
  ssh_user_acquire

  (
    set -e
    ssh-keygen -q -t ed25519 -N '' -C tusk-test-host -f "$s/host_ed25519_key"
    ssh-keygen -q -t ed25519 -N '' -C tusk-test-user -f "$s/id_ed25519"
    printf '%s' "$(rand_hex)" >"$s/id_ed25519_enc.passphrase"
    ssh-keygen -q -t ed25519 -N "$(<"$s/id_ed25519_enc.passphrase")" \
      -C tusk-test-user-enc -f "$s/id_ed25519_enc"
    cat "$s/id_ed25519.pub" "$s/id_ed25519_enc.pub" >"$s/authorized_keys"
    chmod 0644 "$s/authorized_keys"
  ) >"$s/keygen.log" 2>&1 || fail_service ssh "$s/keygen.log" "ssh-keygen failed"

  write_sshctl
  for _ in 1 2 3 4 5; do
    port=$(pick_port) || fail_service ssh "" "no free port"
    cat >"$s/sshd_config" <<EOF
# Generated by scripts/test-env.sh.
Port $port
ListenAddress 127.0.0.1
HostKey $s/host_ed25519_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
AllowUsers $SSH_USER
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
PermitEmptyPasswords no
AllowTcpForwarding yes
StrictModes no
UseDNS no
PrintMotd no
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
    : >"$s/sshd.log"
    "$DIR/sshctl" start >>"$s/sshd.log" 2>&1 && break
    grep -q 'Address already in use' "$s/sshd.log" ||
      fail_service ssh "$s/sshd.log" "sshd did not start"
    log "ssh: port $port was taken, retrying"
    port=
  done
  [ -n "$port" ] || fail_service ssh "$s/sshd.log" "no port could be bound"

  local keytype key _
  read -r keytype key _ <"$s/host_ed25519_key.pub"
  printf '[127.0.0.1]:%s %s %s\n' "$port" "$keytype" "$key" >"$s/known_hosts"

  # The real check: a key login that verifies the host key, as a client does.
  timeout 10 ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o "UserKnownHostsFile=$s/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o IdentitiesOnly=yes -i "$s/id_ed25519" -p "$port" \
    "$SSH_USER@127.0.0.1" true </dev/null >"$s/probe.log" 2>&1 ||
    {
      cat "$s/probe.log" >>"$s/sshd.log"
      fail_service ssh "$s/sshd.log" "key login as $SSH_USER failed"
    }

  exports+=(
    TUSK_TEST_SSH_HOST=127.0.0.1
    "TUSK_TEST_SSH_PORT=$port"
    "TUSK_TEST_SSH_USER=$SSH_USER"
    "TUSK_TEST_SSH_PASSWORD=$ssh_password"
    "TUSK_TEST_SSH_KEY=$s/id_ed25519"
    "TUSK_TEST_SSH_KEY_ENC=$s/id_ed25519_enc"
    "TUSK_TEST_SSH_KEY_PASSPHRASE=$(<"$s/id_ed25519_enc.passphrase")"
    "TUSK_TEST_SSH_KNOWN_HOSTS=$s/known_hosts"
    "TUSK_TEST_SSH_HOST_KEY_PUB=$s/host_ed25519_key.pub"
    "TUSK_TEST_SSHCTL=$DIR/sshctl"
  )
  summary+=("sshd 127.0.0.1:$port")
}

# ------------------------------------------------------------------ main
exports=(TUSK_TEST_ENV=1 "TUSK_TEST_DIR=$DIR")
summary=()
[ $want_pg = 1 ] && init_postgres
[ $want_keyring = 1 ] && start_keyring
[ $want_ssh = 1 ] && start_ssh
[ $want_pg = 1 ] && start_postgres

t_ready=$EPOCHREALTIME
elapsed=$(((${t_ready/./} - ${t_start/./}) / 1000))
log "ready in $((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000)))s:" \
  "${summary[*]:-no services} ($DIR)"

# COMMAND: the caller's environment plus ours; INT/QUIT back to default
# (bash ignores them in background jobs); stdin passed through explicitly
# (bash would give a background job /dev/null).
env --default-signal=INT,QUIT -- "${caller_pg[@]}" "${exports[@]}" "$@" 0<&0 &
cmd_pid=$!
# A Ctrl-C typed on our terminal reaches COMMAND directly (same foreground
# process group); forwarding it too would deliver it twice, which an
# interactive shell sees as a double Ctrl-C.  So INT is forwarded only when
# we are not the terminal's foreground group (kill -INT, CI).
in_foreground() {
  local s f
  s=$(<"/proc/$$/stat")
  s=${s##*) }
  read -r -a f <<<"$s" # state ppid pgrp session tty_nr tpgid ...
  [ "${f[2]}" = "${f[5]}" ]
}
forward() {
  alive "$cmd_pid" || return 0
  [ "$1" = INT ] && in_foreground && return 0
  kill "-$1" "$cmd_pid" 2>/dev/null
  return 0
}
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward HUP' HUP
status=0
while :; do
  wait "$cmd_pid" && status=0 || status=$?
  alive "$cmd_pid" || break # a trapped signal interrupted wait: wait again
done
# If a trap interrupted the last wait just as COMMAND ended, its own status
# is still to be collected.  Bash answers 127 when it was already reported
# and, in that race, sometimes -1: keep the status we have then.
if [ "$status" -gt 128 ]; then
  wait "$cmd_pid" 2>/dev/null && s=0 || s=$?
  if [ "$s" -ge 0 ] && [ "$s" -le 255 ] && [ "$s" -ne 127 ]; then
    status=$s
  fi
fi
cmd_pid=
exit "$status"
