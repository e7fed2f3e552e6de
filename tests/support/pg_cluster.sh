#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster for the test suite (Debian's postgresql package).
#   tests/support/pg_cluster.sh start   -> prints the admin URL (postgresql://cnop@127.0.0.1:PORT/postgres)
#   tests/support/pg_cluster.sh stop
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# The cluster runs as the `postgres` user, who cannot enter a clone in a private (mode 700) directory:
# keep it under /tmp, one per clone.
DIR="${CNOP_PGTEST_DIR:-${TMPDIR:-/tmp}/cnop-pgtest-$(printf %s "$ROOT" | md5sum | cut -c1-12)}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$BIN" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
  start)
    if [ -f "$DIR/url" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then cat "$DIR/url"; exit 0; fi
    rm -rf "$DIR"; mkdir -p "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$BIN/initdb" -D "$DIR/data" -U cnop --auth=trust -E UTF8 >/dev/null
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/data/server.log" -w -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
    echo "postgresql://cnop@127.0.0.1:$PORT/postgres" | tee "$DIR/url"
    ;;
  stop)
    if [ -d "$DIR/data" ]; then as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true; fi
    rm -rf "$DIR"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
