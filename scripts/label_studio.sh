#!/usr/bin/env bash
# A local Label Studio server for review: its own venv (label-studio pins
# versions our .venv must not get), bound to 127.0.0.1, sign-up off, SSRF
# protection on, no telemetry.
#
#   scripts/label_studio.sh install     create .venv-labelstudio with label-studio
#   scripts/label_studio.sh start       start it; prints "export" lines for the client
#   scripts/label_studio.sh stop        stop the server started by `start` (by its PID)
#
# Our model server is an ML backend on loopback (http://127.0.0.1:8000/ls/). SSRF protection
# stays on, with loopback allowed and nothing else: ML_BLOCK_LOCAL_IP=false lets the ML-backend
# calls (health, setup, predict, train) reach 127.0.0.1, and the banned subnets are Label
# Studio's defaults minus 127.0.0.0/8 and ::1, so the backend's webhook (ANNOTATION_CREATED, ...
# sent to .../ls/webhook) is accepted too. LABEL_STUDIO_ALLOW_LOOPBACK_BACKEND=false keeps
# Label Studio's defaults (then no loopback backend can connect).
#
# Prediction import: Label Studio 1.23.2's default import (POST /api/projects/<id>/import/predictions)
# recounts the predictions of every task of the project on each call, so `labeling review
# predict-all` of 10,000 tasks took 298 s in calls of 500 tasks. Its own feature flag
# fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short (set below) recounts only
# the imported tasks: 38 s for the same 10,000 (on a loaded 2-core machine).
#
# Settings (environment): LABEL_STUDIO_PORT (default 8089), LABEL_STUDIO_STALL_S (start gives up
# when the server has used no CPU and written nothing for this long; default 180), LABEL_STUDIO_START_MAX_S
# (and in any case after this long; default 1200), LABEL_STUDIO_BASE_DATA_DIR
# (default .label-studio/data, git-ignored), LABEL_STUDIO_USERNAME/PASSWORD/USER_TOKEN
# (generated at random when unset; the token is written to the data dir, mode 600,
# never to the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
LS_VERSION=1.23.2
VENV=${LABEL_STUDIO_VENV:-.venv-labelstudio}
PORT=${LABEL_STUDIO_PORT:-8089}
STATE=${LABEL_STUDIO_STATE_DIR:-.label-studio}
DATA=${LABEL_STUDIO_BASE_DATA_DIR:-$STATE/data}
PIDFILE=$STATE/server.pid
LOG=$STATE/server.log

install() {
    local python=${PYTHON:-python3.11}
    command -v "$python" >/dev/null || python=python3
    [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
    if ! "$VENV/bin/python" -c "import label_studio, sys; sys.exit(label_studio.__version__ != '$LS_VERSION')" 2>/dev/null; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        # Its own pinned set (pip freeze of a working install): label-studio's ranges alone would
        # resolve to whatever is newest on the day.
        "$VENV/bin/python" -m pip install --quiet -c constraints-labelstudio.txt "label-studio==$LS_VERSION"
    fi
    echo "label_studio: $VENV ready (label-studio $LS_VERSION)" >&2
}

# Label Studio 1.23.2's default banned subnets (core/utils/io.py validate_ip) without loopback.
NOT_LOOPBACK=0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,169.254.0.0/16,172.16.0.0/12,192.0.0.0/24,192.0.2.0/24,\
192.88.99.0/24,192.168.0.0/16,198.18.0.0/15,198.51.100.0/24,203.0.113.0/24,224.0.0.0/4,233.252.0.0/24,240.0.0.0/4,\
255.255.255.255/32,::/128,::ffff:0:0/96,::ffff:0:0:0/96,64:ff9b::/96,64:ff9b:1::/48,100::/64,2001:0000::/32,\
2001:20::/28,2001:db8::/32,2002::/16,fc00::/7,fe80::/10,ff00::/8

loopback_backend() {
    if [ "${LABEL_STUDIO_ALLOW_LOOPBACK_BACKEND:-true}" = true ]; then
        printf '%s\n' ML_BLOCK_LOCAL_IP=false USE_DEFAULT_BANNED_SUBNETS=false "USER_ADDITIONAL_BANNED_SUBNETS=$NOT_LOOPBACK"
    fi
}

start() {
    [ -x "$VENV/bin/label-studio" ] || { echo "label_studio: run '$0 install' first" >&2; exit 1; }
    mkdir -p "$STATE" "$DATA"
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "label_studio: already running (pid $(cat "$PIDFILE"))" >&2
    else
        local secrets=$STATE/credentials
        if [ ! -f "$secrets" ]; then
            # The admin user and its token are created at the first start only.
            (umask 077
             printf 'LABEL_STUDIO_USERNAME=%s\nLABEL_STUDIO_PASSWORD=%s\nLABEL_STUDIO_USER_TOKEN=%s\n' \
                "${LABEL_STUDIO_USERNAME:-reviewer@localhost.local}" \
                "${LABEL_STUDIO_PASSWORD:-$(python3 -c "import secrets; print(secrets.token_hex(16))")}" \
                "${LABEL_STUDIO_USER_TOKEN:-$(python3 -c "import secrets; print(secrets.token_hex(20))")}" > "$secrets")
        fi
        set -a; . "$secrets"; set +a
        LABEL_STUDIO_BASE_DATA_DIR=$DATA \
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true \
        SSRF_PROTECTION_ENABLED=true \
        SENTRY_DSN= FRONTEND_SENTRY_DSN= LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false \
        DJANGO_DB=sqlite \
        fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short=true \
            env $(loopback_backend) nohup "$VENV/bin/label-studio" start --internal-host 127.0.0.1 --port "$PORT" --no-browser \
            > "$LOG" 2>&1 < /dev/null &
        echo $! > "$PIDFILE"
    fi
    # A first start applies Label Studio's migrations (about 100 s on a 2-core machine at load
    # 5, several minutes under more), silently: wait while the server makes progress (its CPU
    # time, its log or its database grows), and give up only when none has moved for
    # LABEL_STUDIO_STALL_S seconds, or after LABEL_STUDIO_START_MAX_S in all.
    local url=http://127.0.0.1:$PORT stall_s=${LABEL_STUDIO_STALL_S:-180} max_s=${LABEL_STUDIO_START_MAX_S:-1200}
    local began=$SECONDS moved=$SECONDS size=-1 now
    while :; do
        if curl -fsS --max-time 5 "$url/health" >/dev/null 2>&1; then
            . "$STATE/credentials"
            echo "export LABEL_STUDIO_URL=$url"
            echo "export LABEL_STUDIO_API_KEY=$LABEL_STUDIO_USER_TOKEN"
            echo "label_studio: up at $url after $((SECONDS - began)) s (log $LOG)" >&2
            return 0
        fi
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 40 "$LOG" >&2; echo "label_studio: server exited" >&2; exit 1; }
        now="$(wc -c < "$LOG" 2>/dev/null || true) $(wc -c < "$DATA/label_studio.sqlite3" 2>/dev/null || true)"
        now+=" $(awk '{print $14 + $15}' "/proc/$(cat "$PIDFILE")/stat" 2>/dev/null || true)"  # CPU ticks (Linux)
        [ "$now" != "$size" ] && { size=$now; moved=$SECONDS; }
        if [ $((SECONDS - moved)) -ge "$stall_s" ] || [ $((SECONDS - began)) -ge "$max_s" ]; then
            break
        fi
        sleep 0.5
    done
    tail -n 40 "$LOG" >&2
    echo "label_studio: not healthy after $((SECONDS - began)) s (no progress for $((SECONDS - moved)) s;" \
         "LABEL_STUDIO_STALL_S=$stall_s, LABEL_STUDIO_START_MAX_S=$max_s); stop it with: $0 stop" >&2
    exit 1
}

stop() {
    [ -f "$PIDFILE" ] || return 0
    local pid
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$PIDFILE"
    echo "label_studio: stopped" >&2
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 {install|start|stop}" >&2; exit 2 ;;
esac
