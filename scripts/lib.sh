# Shell helpers the scripts share; source it: . "$(dirname "$0")/lib.sh"

# Waits until URL answers anything over HTTP, at most SECONDS (default 15).
wait_for() { # url [seconds]
    local tries=$((${2:-15} * 20))
    for _ in $(seq 1 "$tries"); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.05
    done
    echo "not answering: $1" >&2
    return 1
}

# Waits until a unix socket at PATH answers HTTP, at most SECONDS (default 15).
wait_for_socket() { # path [seconds]
    local tries=$((${2:-15} * 20))
    for _ in $(seq 1 "$tries"); do
        curl -s -o /dev/null --unix-socket "$1" http://edge/livez && return 0
        sleep 0.05
    done
    echo "not answering: $1" >&2
    return 1
}
