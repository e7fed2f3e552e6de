#!/bin/sh
# CNOP's nginx proxy: renders the config for this environment, checks it, runs nginx unprivileged.
#   proxy.sh render DIR   write DIR/nginx.conf and its includes
#   proxy.sh check DIR    render, then `nginx -t` on the result
#   proxy.sh run [DIR]    render, then nginx in the foreground (DIR defaults to /tmp/cnop-nginx)
# Environment:
#   CNOP_BACKENDS      backends as host:port, separated by spaces or commas (default app:3000)
#   CNOP_STATIC_ROOT   the exported frontend (default /srv/cnop)
#   CNOP_PROXY_PORT    plain HTTP port (default 8080)
#   CNOP_TLS_CERT, CNOP_TLS_KEY   PEM files: serve HTTPS on CNOP_TLS_PORT (default 8443) and redirect
#                                 plain HTTP there
#   CNOP_MAX_FAILS, CNOP_FAIL_TIMEOUT   passive health check per backend (default 2 failures, 10s out)
set -eu

HERE=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
NGINX="${NGINX:-nginx}"

usage() {
    sed -n '2,13s/^# \{0,1\}//p' "$0"
}

render() {
    out="$1"
    backends=$(printf '%s' "${CNOP_BACKENDS:-app:3000}" | tr ',' ' ')
    static_root="${CNOP_STATIC_ROOT:-/srv/cnop}"
    max_fails="${CNOP_MAX_FAILS:-2}"
    fail_timeout="${CNOP_FAIL_TIMEOUT:-10s}"
    mkdir -p "$out/tmp"
    servers=""
    for backend in $backends; do
        case "$backend" in
            *:*[!0-9]* | *: | :*) echo "CNOP_BACKENDS: '$backend' is not host:port" >&2; exit 2 ;;
            *:*) ;;
            *) echo "CNOP_BACKENDS: '$backend' is not host:port" >&2; exit 2 ;;
        esac
        servers="$servers    server $backend max_fails=$max_fails fail_timeout=$fail_timeout;
"
    done
    [ -n "$servers" ] || { echo "CNOP_BACKENDS is empty" >&2; exit 2; }

    cat >"$out/upstreams.conf" <<EOF
# Written by proxy.sh from CNOP_BACKENDS.
upstream cnop_events {
    hash \$cnop_affinity consistent;
$servers}

upstream cnop_api {
    least_conn;
$servers    keepalive 32;
}
EOF

    if [ -n "${CNOP_TLS_CERT:-}" ] || [ -n "${CNOP_TLS_KEY:-}" ]; then
        [ -n "${CNOP_TLS_CERT:-}" ] && [ -n "${CNOP_TLS_KEY:-}" ] || {
            echo "set both CNOP_TLS_CERT and CNOP_TLS_KEY" >&2
            exit 2
        }
        cat >"$out/listen.conf" <<EOF
# Written by proxy.sh: HTTPS.
listen ${CNOP_TLS_PORT:-8443} ssl http2;
ssl_certificate $CNOP_TLS_CERT;
ssl_certificate_key $CNOP_TLS_KEY;
ssl_protocols TLSv1.2 TLSv1.3;
ssl_session_cache shared:cnop_tls:10m;
ssl_session_timeout 1d;
add_header Strict-Transport-Security "max-age=31536000" always;
EOF
        cat >"$out/servers.conf" <<EOF
# Written by proxy.sh: plain HTTP only redirects to HTTPS.
server {
    listen ${CNOP_PROXY_PORT:-8080};
    server_name _;
    return 308 https://\$host\$request_uri;
}
EOF
    else
        printf '# Written by proxy.sh: plain HTTP (TLS ends in front of this proxy).\nlisten %s;\n' \
            "${CNOP_PROXY_PORT:-8080}" >"$out/listen.conf"
        printf '# Written by proxy.sh: no extra servers.\n' >"$out/servers.conf"
    fi

    cp "$HERE/nginx.conf" "$HERE/proxy_headers.conf" "$out/"
    # Only this variable: nginx's own $variables must stay as they are.
    CNOP_STATIC_ROOT="$static_root" envsubst '${CNOP_STATIC_ROOT}' <"$HERE/cnop.conf" >"$out/cnop.conf"
}

command="${1:-}"
case "$command" in
    render)
        [ "$#" -eq 2 ] || { usage >&2; exit 2; }
        render "$2"
        ;;
    check)
        [ "$#" -eq 2 ] || { usage >&2; exit 2; }
        render "$2"
        exec "$NGINX" -t -e stderr -p "$2/" -c "$2/nginx.conf"
        ;;
    run)
        dir="${2:-/tmp/cnop-nginx}"
        render "$dir"
        exec "$NGINX" -e stderr -p "$dir/" -c "$dir/nginx.conf" -g 'daemon off;'
        ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
