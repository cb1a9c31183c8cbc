#!/usr/bin/env bash
# Makes sure /usr/sbin/nginx exists: when it is missing, installs the Debian
# package nginx-light with apt-get (running `apt-get update` first only when
# the install fails without it). Idempotent and quiet: prints nothing when
# nginx is already there; exits non-zero with a message when it cannot be had.
#
#   scripts/need-nginx.sh
set -euo pipefail

nginx=/usr/sbin/nginx
[ -x "$nginx" ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "need-nginx: $nginx is missing and there is no apt-get to install nginx-light" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
install_nginx() { apt-get install -y -q --no-install-recommends nginx-light >>"$log" 2>&1; }

echo "need-nginx: installing nginx (Debian package nginx-light)" >&2
if ! install_nginx; then
    if ! apt-get update -q >>"$log" 2>&1 || ! install_nginx; then
        cat "$log" >&2
        echo "need-nginx: could not install nginx-light with apt-get (output above)" >&2
        exit 1
    fi
fi
if [ ! -x "$nginx" ]; then
    cat "$log" >&2
    echo "need-nginx: nginx-light was installed but $nginx is still missing" >&2
    exit 1
fi
