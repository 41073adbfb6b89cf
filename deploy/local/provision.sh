#!/usr/bin/env bash
# Make this machine ready for `make run` (run) or `make test` (test): check each system component, install
# what is missing with apt when we are root or may sudo without a password, start what is stopped, wait
# until each answers. Otherwise stop with the one command a person must run. Run twice, it changes nothing.
#
#   deploy/local/provision.sh run    Python 3.11 and a RabbitMQ answering on 127.0.0.1:5672
#   deploy/local/provision.sh test   the same, plus PostgreSQL on 127.0.0.1:5432 with trust authentication,
#                                    RabbitMQ's management plugin, Dovecot (the tests start it) and Chromium
#
# It says what it found and what it did, one line a component. HELPDESK_AMQP_URI pointing elsewhere than
# this machine: the broker is taken as given (nothing local is started).
set -uo pipefail
need="${1:-run}"
case "$need" in run|test) ;; *) echo "usage: $0 run|test" >&2; exit 2 ;; esac

say() { printf 'provision: %-22s %s\n' "$1" "$2"; }
fail() { say "$1" "$2"; echo "provision: to go on, run: $3" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # port, seconds
  for _ in $(seq 1 $(( $2 * 2 ))); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}

if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
apt_updated=""
install() {  # component, packages...: install with apt, or stop with the command to run
  local what="$1"; shift
  if [ "$SUDO" = none ] || ! command -v apt-get >/dev/null; then
    fail "$what" "missing" "sudo apt-get update && sudo apt-get install -y $*"
  fi
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq >/dev/null 2>&1; apt_updated=yes; fi
  if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1; then
    say "$what" "installed ($*)"
  else
    fail "$what" "could not be installed" "sudo apt-get install -y $*"
  fi
}
as_root() { if [ "$SUDO" = none ]; then return 1; fi; $SUDO "$@"; }
as_postgres() {
  if [ "$SUDO" = none ]; then return 1; elif [ -z "$SUDO" ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

# --- Python 3.11 (the pinned packages are built for it) ------------------------------------------------
if command -v python3.11 >/dev/null && python3.11 -c "import venv, ensurepip" 2>/dev/null; then
  say python3.11 "found"
else
  install python3.11 python3.11 python3.11-venv
fi

# --- RabbitMQ ---------------------------------------------------------------------------------------
uri="${HELPDESK_AMQP_URI:-pyamqp://guest:guest@127.0.0.1:5672/}"
if [[ "$uri" != *@127.0.0.1* && "$uri" != *@localhost* ]]; then
  say rabbitmq "HELPDESK_AMQP_URI points elsewhere: taken as given"
else
  command -v rabbitmq-server >/dev/null || install rabbitmq rabbitmq-server
  if port_open 5672; then
    say rabbitmq "running"
  else
    as_root rabbitmq-server -detached >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1
    wait_port 5672 90 || fail rabbitmq "did not start" "sudo rabbitmq-server -detached"
    say rabbitmq "started"
  fi
fi

[ "$need" = run ] && exit 0

# --- RabbitMQ's management plugin (the tests make a throwaway vhost per run through its API) ------------
if port_open 15672; then
  say rabbitmq-management "running"
else
  as_root rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null 2>&1 \
    || fail rabbitmq-management "not enabled" "sudo rabbitmq-plugins enable rabbitmq_management"
  wait_port 15672 60 || fail rabbitmq-management "did not answer" "sudo rabbitmq-plugins enable rabbitmq_management"
  say rabbitmq-management "enabled"
fi

# --- RabbitMQ answers vhost operations (each test run makes its own) -----------------------------------
# A node can accept connections yet stall every vhost operation (seen after a machine's suites were killed
# mid-run, leaving quorum queues behind): every test would then fail. Under CI, the only user of the local
# broker, a stalled node is reset; elsewhere the command is said.
api="http://guest:guest@127.0.0.1:15672/api"
vhost_works() {  # a plugin just enabled answers 503 for some seconds: a few tries
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    curl -fsS -m 60 -X PUT "$api/vhosts/helpdesk-provision-check" >/dev/null 2>&1 \
      && curl -fsS -m 60 -X DELETE "$api/vhosts/helpdesk-provision-check" >/dev/null 2>&1 && return 0
    sleep 3
  done
  return 1
}
if vhost_works; then
  say rabbitmq-vhosts "answering"
elif [ "${CI:-}" = true ] && as_root rabbitmqctl stop_app >/dev/null 2>&1 && as_root rabbitmqctl force_reset >/dev/null 2>&1 \
    && as_root rabbitmqctl start_app >/dev/null 2>&1 && wait_port 15672 60 && vhost_works; then
  say rabbitmq-vhosts "stalled: the node was reset (CI owns it)"
else
  fail rabbitmq-vhosts "stalled (a vhost could not be made and deleted in 60 s)" \
    "sudo rabbitmqctl stop_app && sudo rabbitmqctl force_reset && sudo rabbitmqctl start_app"
fi

# --- PostgreSQL, with trust authentication for local connections as postgres ---------------------------
command -v pg_ctlcluster >/dev/null || install postgresql postgresql
if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  say postgresql "running"
else
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
  [ -n "$version" ] || fail postgresql "has no cluster" "sudo pg_createcluster --start 15 main"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 \
    || fail postgresql "did not start" "sudo pg_ctlcluster $version main start"
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -q -h 127.0.0.1 -p 5432 || fail postgresql "did not answer" "sudo pg_ctlcluster $version main start"
  say postgresql "started"
fi
if psql -h 127.0.0.1 -U postgres -w -Atc "select 1" >/dev/null 2>&1; then
  say postgresql-trust "found (postgres connects without a password)"
else
  hba="$(as_postgres psql -Atc 'show hba_file' 2>/dev/null || true)"
  [ -n "$hba" ] || fail postgresql-trust "not set" \
    "add 'host all postgres 127.0.0.1/32 trust' at the top of pg_hba.conf and reload PostgreSQL"
  as_root sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  as_postgres psql -Atc "select pg_reload_conf()" >/dev/null
  psql -h 127.0.0.1 -U postgres -w -Atc "select 1" >/dev/null 2>&1 \
    || fail postgresql-trust "still asks for a password" "allow trust for postgres on 127.0.0.1 in $hba"
  say postgresql-trust "set in $hba"
fi

# --- Dovecot (the intake tests start their own, unprivileged), Chromium (the browser tests), promtool --
if command -v dovecot >/dev/null; then say dovecot "found"; else install dovecot dovecot-imapd; fi
if command -v chromium >/dev/null; then say chromium "found"; else install chromium chromium; fi
# promtool checks the Prometheus alerting rules (tests/test_monitoring_files.py); Debian ships it with prometheus.
if command -v promtool >/dev/null; then say promtool "found"; else install promtool prometheus; fi
exit 0
