#!/usr/bin/env bash
# bench/scraped.sh ADDR:PORT CMD [ARG...]
#
# Runs CMD (a daemon in the foreground, e.g. `ferrotun -f {if}`) with its Prometheus
# endpoint on ADDR:PORT (FERROTUN_METRICS) and scrapes /metrics every second for as long
# as the daemon lives, as a Prometheus server would. For bench/run.sh's "metrics on" row:
#   bench/run.sh ferrotun "scraped=bench/scraped.sh 127.0.0.1:9586 target/release/ferrotun -f {if}"
# Each daemon runs in its own namespace, so both ends may use the same address. The
# scraper is a child of this shell's namespace and is killed with it (bench/run.sh kills
# every process of a namespace before deleting it); it also stops by itself once the
# endpoint has been gone for 10 s.
set -u
addr=${1:?usage: scraped.sh ADDR:PORT CMD [ARG...]}
shift
[[ $# -gt 0 ]] || { echo "usage: scraped.sh ADDR:PORT CMD [ARG...]" >&2; exit 2; }
(
  misses=0
  while (( misses < 10 )); do
    sleep 1
    if curl -sf -m 2 -o /dev/null "http://$addr/metrics"; then misses=0; else misses=$((misses + 1)); fi
  done
) &
export FERROTUN_METRICS=$addr
exec "$@"
