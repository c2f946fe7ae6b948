#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: Debian's package, a fresh data folder,
# bound to 127.0.0.1 on a free port (and a socket in its own folder), trust auth (it
# lives as long as the test run and only this machine reaches it).
#
#   scripts/postgres.sh install   apt-get install postgresql when no server binaries are found
#   scripts/postgres.sh start     initdb + start as the (non-root) postgres user; prints
#                                 "export LABELING_TEST_POSTGRES_URL=..." for the tests
#   scripts/postgres.sh stop      stop the cluster started by `start` and remove its folder
#
# Settings (environment): POSTGRES_STATE_DIR (the cluster's folder; default a new mktemp -d,
# printed as an export line so `stop` finds it), POSTGRES_PORT (default: a free port),
# POSTGRES_FSYNC (default off: the tests make and drop a database each, and a cluster that
# lives minutes needs no power-loss safety; "on" for benchmarks).
# initdb refuses to run as root: as root, the cluster runs as the `postgres` user that
# Debian's package creates.
set -euo pipefail

bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
    return 1
}

install() {
    if ! bindir >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    fi
    echo "postgres: $(bindir) ready" >&2
}

as_owner() {  # run a command as the cluster's owner (postgres when we are root)
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

start() {
    local bin state port
    bin=$(bindir) || { echo "postgres: no server binaries; run '$0 install' first" >&2; exit 1; }
    state=${POSTGRES_STATE_DIR:-$(mktemp -d)}
    port=${POSTGRES_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    mkdir -p "$state"
    [ "$(id -u)" = 0 ] && chown postgres: "$state"
    chmod 700 "$state"
    as_owner "'$bin/initdb' -D '$state/data' -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >'$state/initdb.log'"
    as_owner "'$bin/pg_ctl' -D '$state/data' -l '$state/server.log' -w -o \"-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$state' -c max_connections=200 -c fsync=${POSTGRES_FSYNC:-off}\" start >/dev/null"
    echo "export POSTGRES_STATE_DIR='$state'"
    echo "export LABELING_TEST_POSTGRES_URL='postgresql://postgres@127.0.0.1:$port/postgres'"
}

stop() {
    local bin state=${POSTGRES_STATE_DIR:-}
    [ -n "$state" ] || { echo "postgres: POSTGRES_STATE_DIR is unset: nothing to stop" >&2; return 0; }
    bin=$(bindir)
    if [ -f "$state/data/postmaster.pid" ]; then
        as_owner "'$bin/pg_ctl' -D '$state/data' -m fast -w stop >/dev/null" || true
    fi
    rm -rf "$state"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
