#!/bin/sh
# CNOP process entrypoint: the same script in the image (/app) and in a checkout (run from anywhere).
#   deploy/entrypoint.sh [serve]             backend only on $CNOP_PORT (the proxy serves the frontend)
#   deploy/entrypoint.sh migrate             schema to the newest revision, then idempotent seed data
#   deploy/entrypoint.sh export-frontend [DIR]
#                                            static frontend for $CNOP_PUBLIC_URL (copied to DIR if given)
#   deploy/entrypoint.sh --help
# Environment: CNOP_PORT (3000), CNOP_BACKEND_HOST (0.0.0.0), CNOP_MIGRATE_ON_START (false),
# CNOP_PUBLIC_URL (baked into the exported frontend) and every other CNOP_* setting of the app.
set -eu

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"

if [ -x "$ROOT/.venv/bin/python" ]; then
    BIN="$ROOT/.venv/bin/"
else
    BIN=""
fi

CNOP_PORT="${CNOP_PORT:-3000}"
export CNOP_PORT
# Same defaults as the Makefile; a value already in the environment wins.
export REFLEX_DIR="${REFLEX_DIR:-$ROOT/.tools/reflex}"
export REFLEX_TELEMETRY_ENABLED="${REFLEX_TELEMETRY_ENABLED:-false}"
export REFLEX_CHECK_LATEST_VERSION="${REFLEX_CHECK_LATEST_VERSION:-false}"

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0"
}

migrate() {
    "${BIN}python" -m cnop_app.manage migrate
    "${BIN}python" -m cnop_app.manage seed
}

serve() {
    case "${CNOP_MIGRATE_ON_START:-false}" in
        true | 1 | yes) migrate ;;
        false | 0 | no | "") ;;
        *) echo "CNOP_MIGRATE_ON_START must be true or false, got '$CNOP_MIGRATE_ON_START'" >&2; exit 2 ;;
    esac
    # rxconfig.py sets a frontend port, which `--backend-only` refuses; 0 means "none" to Reflex.
    export REFLEX_FRONTEND_PORT="${REFLEX_FRONTEND_PORT:-0}"
    # Reflex runs gunicorn as a child process and would exit on SIGTERM without passing it on (the
    # server left running, or killed with the container). This shell stays in front: a stop sent to
    # it (PID 1 in a container) goes to gunicorn's master, which drains its workers and exits; Reflex
    # exits after it, then this shell with Reflex's status.
    "${BIN}reflex" run --env prod --backend-only \
        --backend-host "${CNOP_BACKEND_HOST:-0.0.0.0}" --backend-port "$CNOP_PORT" &
    reflex_pid=$!
    trap 'stop_server "$reflex_pid"' TERM INT
    status=0
    wait "$reflex_pid" || status=$?
    # A trapped signal ends the first wait early (status > 128); wait again for the real exit.
    while kill -0 "$reflex_pid" 2>/dev/null; do
        status=0
        wait "$reflex_pid" || status=$?
    done
    exit "$status"
}

stop_server() {
    children=$(cat /proc/"$1"/task/*/children 2>/dev/null || true)
    if [ -n "$children" ]; then
        # shellcheck disable=SC2086 # one pid per word
        kill -TERM $children 2>/dev/null || true
    else
        kill -TERM "$1" 2>/dev/null || true
    fi
}

export_frontend() {
    bun="$ROOT/.tools/node_modules/bun/bin/bun.exe"
    if [ -z "${REFLEX_BUN_PATH:-}" ] && [ -x "$bun" ]; then
        export REFLEX_BUN_PATH="$bun"
        export BUN_INSTALL_CACHE_DIR="${BUN_INSTALL_CACHE_DIR:-$ROOT/.tools/bun-cache}"
    fi
    # Reflex otherwise probes several public npm mirrors; use the registry npm is configured with.
    if [ -z "${NPM_CONFIG_REGISTRY:-}" ] && command -v npm >/dev/null 2>&1; then
        NPM_CONFIG_REGISTRY=$(npm config get registry)
        export NPM_CONFIG_REGISTRY
    fi
    "${BIN}reflex" export --frontend-only --no-zip --env prod
    web="${REFLEX_WEB_WORKDIR:-$ROOT/.web}"
    case "$web" in /*) ;; *) web="$ROOT/$web" ;; esac
    site="$web/build/client"
    [ -f "$site/index.html" ] || { echo "export produced no $site/index.html" >&2; exit 1; }
    if [ -n "${1:-}" ]; then
        mkdir -p "$1"
        cp -R "$site/." "$1/"
        echo "frontend exported to $1"
    else
        echo "frontend exported to $site"
    fi
}

command="${1:-serve}"
if [ "$#" -gt 0 ]; then shift; fi
case "$command" in
    serve) serve ;;
    migrate) migrate ;;
    export-frontend) export_frontend "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
