#!/usr/bin/env bash
# bench/scraped.sh HOST:PORT CMD [ARG...]
#
# Runs CMD (a daemon in the foreground, e.g. `ferrotun -f {if}`) with its Prometheus
# endpoint on HOST:PORT (FERROTUN_METRICS; an IPv4 address) and scrapes /metrics every
# second for as long as the daemon lives, as a Prometheus server would. For bench/run.sh's
# "metrics on" row:
#   bench/run.sh ferrotun "scraped=bench/scraped.sh 127.0.0.1:9586 target/release/ferrotun -f {if}"
# The scraper uses only bash built-ins (/dev/tcp, read -t as its clock): no process is started per scrape,
# so what the row measures is the daemon serving the scrape, not a curl starting up beside
# it on the same cores. Each daemon runs in its own namespace, so both ends may use the
# same address. bench/run.sh kills every process of a namespace before deleting it; the
# scraper also stops by itself once the endpoint has been gone for 10 s.
set -u
addr=${1:?usage: scraped.sh HOST:PORT CMD [ARG...]}
shift
[[ $# -gt 0 ]] || { echo "usage: scraped.sh HOST:PORT CMD [ARG...]" >&2; exit 2; }
host=${addr%:*} port=${addr##*:}

scrape() {   # one GET /metrics; true when the reply is a 200 with a body
  local status line lines=0
  exec 3<>"/dev/tcp/$host/$port" || return 1
  printf 'GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$addr" >&3
  IFS= read -r -t 3 status <&3 || { exec 3>&-; return 1; }
  while IFS= read -r -t 3 line <&3; do lines=$((lines + 1)); done
  exec 3>&-
  [[ $status == *" 200 "* && $lines -gt 10 ]]
}

(
  # A FIFO nobody writes to: `read -t 1` on it is a sleep without starting a process.
  tick=$(mktemp -u /tmp/scraped.XXXXXX) && mkfifo "$tick" && exec 4<>"$tick" && rm -f "$tick"
  misses=0
  while (( misses < 10 )); do
    read -r -t 1 -u 4 _
    if scrape 2>/dev/null; then misses=0; else misses=$((misses + 1)); fi
  done
) &
export FERROTUN_METRICS=$addr
exec "$@"
