#!/usr/bin/env bash
# bench/run.sh - ferrotun against wireguard-go and boringtun, side by side, in one run.
#
# Every implementation goes through the same tests on the same topology: two fresh,
# uniquely named network namespaces joined by a veth pair, one daemon per namespace
# (`<bin> -f <ifname>`), configured by the real `wg` over the UAPI socket, MTU 1420.
# The row "veth" runs the tests over the bare veth pair: the ceiling.
#   tcp1       iperf3 TCP, 1 stream                        Gbit/s at the receiver
#   tcp4       iperf3 TCP, 4 streams                       Gbit/s at the receiver
#   udp1400    iperf3 UDP, 1400-byte packets, -b 0         kpps received
#   udp64      iperf3 UDP, 64-byte packets, -b 0           kpps received
#   rtt_idle   ping, tunnel otherwise idle                 average RTT, ms
#   rtt_load   ping while the tcp1 test runs               average RTT, ms
#   cpu_per_gb utime+stime of both daemons during tcp1     CPU seconds per GB received
# Packet sizes are IP packet sizes inside the tunnel (iperf3 -l = size - 28), so the
# 1400-byte packets fit the 1420 MTU unfragmented.
# Runs are interleaved (round 1 of every implementation, then round 2, ...; the order
# rotates each round) so background load drifting over time hits all of them alike;
# each figure is the median of the rounds.
#
# Usage: bench/run.sh [--quick] [--runs N] [--out DIR] [IMPL ...]
#        bench/run.sh --cleanup     remove namespaces left by a killed run
#   IMPL = veth | ferrotun | wireguard-go | boringtun | NAME='CMD -f {if}'
#          (default: veth ferrotun wireguard-go boringtun; {if} = interface name)
#   --quick   1 round, TCP 3 s, UDP 2 s, 20 pings: a smoke test, not a measurement
#   --runs N  rounds per implementation (default 3)
# Env knobs (override --quick too): FTBENCH_RUNS (3), FTBENCH_TCP_SECS (10),
#   FTBENCH_UDP_SECS (5), FTBENCH_PING_COUNT (50), FTBENCH_MTU (1420),
#   FTBENCH_OUT (result dir; default target/bench/<date-time>),
#   FERROTUN_BIN (default target/release/ferrotun, built if missing),
#   FTBENCH_INSTALL=0 (install nothing; by default missing Debian packages come from
#   apt, boringtun-cli 0.7.1 from cargo and matplotlib from pip or apt).
# Output in the result dir: results.md (the table), results.csv (same figures),
#   results.png (bar chart), runs.csv (every single run), run.log, raw iperf3 JSON,
#   daemon logs, versions.txt. Exit status 3 if some run did not complete.
set -uo pipefail
export LC_ALL=C
export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH:/usr/sbin:/sbin"
export DEBIAN_FRONTEND=noninteractive

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# ---- arguments
QUICK=0 RUNS_ARG="" OUT_ARG="" IMPLS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --quick) QUICK=1 ;;
    --runs) RUNS_ARG=${2:?--runs needs a number}; shift ;;
    --runs=*) RUNS_ARG=${1#*=} ;;
    --out) OUT_ARG=${2:?--out needs a directory}; shift ;;
    --out=*) OUT_ARG=${1#*=} ;;
    --cleanup) CLEANUP_ONLY=1 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) IMPLS+=("$1") ;;
  esac
  shift
done
[[ ${#IMPLS[@]} -gt 0 ]] || IMPLS=(veth ferrotun wireguard-go boringtun)

if [[ $QUICK == 1 ]]; then d_runs=1 d_tcp=3 d_udp=2 d_ping=20; else d_runs=3 d_tcp=10 d_udp=5 d_ping=50; fi
RUNS=${RUNS_ARG:-${FTBENCH_RUNS:-$d_runs}}
TCP_SECS=${FTBENCH_TCP_SECS:-$d_tcp}
UDP_SECS=${FTBENCH_UDP_SECS:-$d_udp}
PING_COUNT=${FTBENCH_PING_COUNT:-$d_ping}
MTU=${FTBENCH_MTU:-1420}
INSTALL=${FTBENCH_INSTALL:-1}
UDP_SIZES=(1400 64)
for v in RUNS TCP_SECS UDP_SECS PING_COUNT MTU; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "$v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
# The loaded ping runs from 1 s after tcp1 starts until 1 s before it ends.
[[ $TCP_SECS -ge 3 ]] || { echo "FTBENCH_TCP_SECS must be at least 3" >&2; exit 2; }
[[ $MTU -ge 1400 ]] || { echo "FTBENCH_MTU must be at least 1400 (the large UDP packets)" >&2; exit 2; }

# ---- fixed addresses: they exist only inside the namespaces, which have no default route
UL_A=10.201.0.1   UL_B=10.201.0.2    # underlay, on the veth pair
TUN_A=10.202.0.1  TUN_B=10.202.0.2   # inside the tunnel
PORT_A=51820      PORT_B=51821
IPERF_PORT=5201
NS_PREFIX=ftb     # namespaces are ftb-<our pid>-<n>-a|b; --cleanup keys on the pid
# Hard bound on every daemon's and server's lifetime (they are also killed at teardown).
LIFETIME=$(( 2*TCP_SECS + 2*UDP_SECS + 180 ))
CLK_TCK=$(getconf CLK_TCK)

OUT="" KEYS="" LOGF=/dev/null
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" | tee -a "$LOGF" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# ---- processes and namespaces: everything is killed by pid
PIDS=()
kill_pid() {   # TERM, up to 3 s grace, then KILL
  local p=$1
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  return 0
}
del_ns() {     # a daemon in a namespace survives `ip netns del`: kill its processes first
  local ns=$1 p
  [[ -e /run/netns/$ns ]] || return 0
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill_pid "$p"; done
  ip netns del "$ns" 2>/dev/null
}
teardown() {
  local p
  for p in "${PIDS[@]}"; do kill_pid "$p"; done
  PIDS=()
  [[ -n ${NS_A:-} ]] && del_ns "$NS_A"
  [[ -n ${NS_B:-} ]] && del_ns "$NS_B"
  [[ -n ${IF_A:-} ]] && rm -f "/var/run/wireguard/$IF_A.sock" "/var/run/wireguard/$IF_B.sock"
  NS_A="" NS_B="" IF_A="" IF_B=""
}
cleanup_stale() {   # namespaces of earlier runs whose process is gone (kill -9, reboot of shell)
  local ns pid f
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^${NS_PREFIX}-([0-9]+)-[0-9]+-[ab]$ ]] || continue
    pid=${BASH_REMATCH[1]}
    [[ $pid != "$$" ]] && kill -0 "$pid" 2>/dev/null && continue
    echo "removing stale namespace $ns" >&2
    del_ns "$ns"
  done
  for f in /var/run/wireguard/ft*.sock; do   # sockets of daemons that were killed -9
    [[ ${f##*/} =~ ^ft([0-9]+)x[0-9]+[ab]\.sock$ ]] || continue
    pid=${BASH_REMATCH[1]}
    [[ $pid != "$$" ]] && kill -0 "$pid" 2>/dev/null && continue
    rm -f "$f"
  done
}
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  teardown
  [[ -n $KEYS ]] && rm -rf "$KEYS"
  exit "$rc"
}

if [[ ${CLEANUP_ONLY:-0} == 1 ]]; then
  [[ $EUID -eq 0 ]] || die "--cleanup needs root"
  cleanup_stale; exit 0
fi

# ---- implementations
impl_template() {   # command template, {if} = interface name
  case "$1" in
    ferrotun) echo "env LOG_LEVEL=error $FERROTUN_BIN -f {if}" ;;
    wireguard-go) echo "env LOG_LEVEL=error wireguard-go -f {if}" ;;
    boringtun) echo "boringtun-cli -f --disable-drop-privileges -t 1 -v error {if}" ;;
    *=*) echo "${1#*=}" ;;
    *) return 1 ;;
  esac
}
impl_name() { case "$1" in *=*) echo "${1%%=*}" ;; *) echo "$1" ;; esac; }
template_bin() {    # the program a template runs, skipping `env VAR=...`
  # shellcheck disable=SC2086 # the template is split into words on purpose
  set -- $1
  if [[ $1 == env ]]; then shift; while [[ ${1:-} == *=* ]]; do shift; done; fi
  echo "${1:-}"
}
for spec in "${IMPLS[@]}"; do
  [[ $spec == veth || $spec == ferrotun || $spec == wireguard-go || $spec == boringtun || $spec == ?*=?* ]] ||
    { echo "unknown implementation '$spec' (veth, ferrotun, wireguard-go, boringtun or NAME='CMD -f {if}')" >&2; exit 2; }
  name=$(impl_name "$spec")
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "bad implementation name '$name'" >&2; exit 2; }
done

[[ $EUID -eq 0 ]] || die "run as root: it makes network namespaces and TUN interfaces (sudo bench/run.sh ...)"

# ---- prerequisites
has_impl() { local s; for s in "${IMPLS[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }
ensure_tools() {
  local -A pkg_of=([ip]=iproute2 [ss]=iproute2 [wg]=wireguard-tools [iperf3]=iperf3
                   [ping]=iputils-ping [jq]=jq [pgrep]=procps [timeout]=coreutils
                   [flock]=util-linux [python3]=python3)
  has_impl wireguard-go && pkg_of[wireguard-go]=wireguard-go
  local t missing=() pkgs=()
  for t in "${!pkg_of[@]}"; do command -v "$t" >/dev/null || { missing+=("$t"); pkgs+=("${pkg_of[$t]}"); }; done
  if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $INSTALL == 1 ]] && command -v apt-get >/dev/null; then
      echo "installing ${pkgs[*]} (for ${missing[*]})" >&2
      # --no-install-recommends: wireguard-tools would otherwise pull in a kernel image
      mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
      apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2
    fi
    for t in "${missing[@]}"; do
      command -v "$t" >/dev/null || die "missing $t: install the Debian package ${pkg_of[$t]}"
    done
  fi
  if has_impl boringtun && ! command -v boringtun-cli >/dev/null; then
    if [[ $INSTALL == 1 ]] && command -v cargo >/dev/null; then
      echo "installing boringtun-cli 0.7.1 with cargo (a few minutes)" >&2
      cargo install boringtun-cli --version 0.7.1 --locked >&2 ||
        echo "boringtun-cli did not install; its rows will say not-installed" >&2
    else
      echo "boringtun-cli not found (cargo install boringtun-cli --version 0.7.1 --locked); its rows will say not-installed" >&2
    fi
  fi
}
ensure_ferrotun() {
  if [[ -n ${FERROTUN_BIN:-} ]]; then
    [[ -x $FERROTUN_BIN ]] || die "FERROTUN_BIN=$FERROTUN_BIN is not an executable"
    return
  fi
  local tdir=${CARGO_TARGET_DIR:-$REPO/target}
  [[ $tdir == /* ]] || tdir=$REPO/$tdir
  FERROTUN_BIN=$tdir/release/ferrotun
  if [[ ! -x $FERROTUN_BIN ]]; then
    command -v cargo >/dev/null || die "$FERROTUN_BIN is missing and cargo is not in PATH: run 'cargo build --release -p ferrotun' first"
    echo "building $FERROTUN_BIN" >&2
    (cd "$REPO" && cargo build --release -p ferrotun >&2) || die "cargo build --release -p ferrotun failed"
  elif [[ -n $(find "$REPO/crates" -name '*.rs' -newer "$FERROTUN_BIN" -print -quit 2>/dev/null) ]]; then
    echo "warning: sources are newer than $FERROTUN_BIN; run 'cargo build --release -p ferrotun' to bench the current code" >&2
  fi
}
ensure_tools
has_impl ferrotun && ensure_ferrotun
FERROTUN_BIN=${FERROTUN_BIN:-}

# One benchmark at a time: two would disturb each other's figures.
exec 9>/run/ferrotun-bench.lock
flock -n 9 || die "another bench/run.sh is running (lock /run/ferrotun-bench.lock)"

OUT=${OUT_ARG:-${FTBENCH_OUT:-$REPO/target/bench/$(date +%Y%m%d-%H%M%S)}}
mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
LOGF=$OUT/run.log
KEYS=$(mktemp -d -t ftbench-keys.XXXXXX) || die "mktemp failed"
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cleanup_stale

# ---- one run of one implementation
# cpu_ticks PID: utime+stime of the whole process (all threads, dead ones included)
cpu_ticks() {
  local line f
  read -r line 2>/dev/null <"/proc/$1/stat" || { echo ""; return; }
  # After "(comm) " come state, ppid, ...; utime and stime are the 12th and 13th of those.
  read -ra f <<<"${line##*) }"
  echo $(( f[11] + f[12] ))
}
loadavg1() { cut -d' ' -f1 /proc/loadavg; }

setup_netns() {
  ip netns add "$NS_A" && ip netns add "$NS_B" || return 1
  ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B" || return 1
  ip -n "$NS_A" addr add "$UL_A/24" dev "$VETH_A" && ip -n "$NS_B" addr add "$UL_B/24" dev "$VETH_B" || return 1
  ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up || return 1
  ip -n "$NS_A" link set "$VETH_A" up && ip -n "$NS_B" link set "$VETH_B" up || return 1
  # Nothing may leave the namespaces: refuse to run if either has a default route.
  [[ -z "$(ip -n "$NS_A" route show default)$(ip -n "$NS_B" route show default)" ]]
}

start_daemon() {   # start_daemon NS IFNAME TEMPLATE LOG -> DPID
  local ns=$1 ifn=$2 tmpl=$3 lg=$4 cmd tpid
  cmd=${tmpl//\{if\}/$ifn}
  # timeout's child is the daemon itself (ip netns exec and bash -c exec both exec).
  timeout -k 5 "$LIFETIME" ip netns exec "$ns" bash -c "exec $cmd" >"$lg" 2>&1 </dev/null &
  tpid=$!; PIDS+=("$tpid"); DPID=""
  for _ in $(seq 50); do DPID=$(pgrep -P "$tpid" | head -n1); [[ -n $DPID ]] && break; sleep 0.1; done
  [[ -n $DPID ]] || { log "  daemon did not start: $cmd"; return 1; }
  PIDS=("$DPID" "${PIDS[@]}")
  for _ in $(seq 100); do   # up to 10 s for the UAPI socket
    if [[ -S /var/run/wireguard/$ifn.sock ]]; then
      sleep 0.3   # some daemons fail just after opening the socket (privilege drop)
      kill -0 "$DPID" 2>/dev/null && return 0
      break
    fi
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
  done
  log "  $ifn: no UAPI socket or the daemon exited: $(tail -n 3 "$lg" | tr '\n' ' ')"
  return 1
}

configure_wg() {   # configure_wg NS IF KEYFILE PORT PEERPUB PEER_UL PEERPORT MYTUN PEERTUN
  local ns=$1 ifn=$2 key=$3 port=$4 pub=$5 pul=$6 pport=$7 me=$8 peer=$9 cf
  cf=$KEYS/$ifn.conf
  (umask 077; printf '[Interface]\nPrivateKey = %s\nListenPort = %s\n\n[Peer]\nPublicKey = %s\nEndpoint = %s:%s\nAllowedIPs = %s/32\n' \
    "$(cat "$key")" "$port" "$pub" "$pul" "$pport" "$peer" >"$cf")
  ip netns exec "$ns" timeout 10 wg setconf "$ifn" "$cf" &&
    ip -n "$ns" addr add "$me/32" dev "$ifn" &&
    ip -n "$ns" link set "$ifn" mtu "$MTU" up &&
    ip -n "$ns" route add "$peer/32" dev "$ifn"
}

iperf_client() {   # iperf_client TAG ARGS... -> JSON path on stdout
  local tag=$1; shift
  local js=$OUT/raw/$CUR.r$ROUND.$tag.json
  ip netns exec "$NS_A" timeout $(( TCP_SECS + UDP_SECS + 30 )) \
    iperf3 -c "$DST" -p "$IPERF_PORT" -J --connect-timeout 3000 "$@" >"$js" 2>"${js%.json}.err"
  echo "$js"
}
jnum() { jq -r "$2 // empty" "$1" 2>/dev/null | grep -E '^[0-9.eE+-]+$'; }
ping_avg() {   # ping_avg ARGS... -> "loss_pct avg_ms" (avg missing if nothing came back)
  ip netns exec "$NS_A" timeout 120 ping -q -n -W 1 "$@" "$DST" 2>&1 | awk '
    match($0, /[0-9.]+% packet loss/) { loss = substr($0, RSTART, RLENGTH - 13) }
    /^rtt|^round-trip/ { split($0, a, "= "); split(a[2], v, "/"); avg = sprintf("%.3f", v[2]) }
    END { print (loss == "" ? "?" : loss), avg }'
}

run_tests() {
  local js c0a c0b c1a c1b cpu bytes ipid n size loss
  timeout -k 5 "$LIFETIME" ip netns exec "$NS_B" iperf3 -s -B "$DST" -p "$IPERF_PORT" \
    >"$OUT/raw/$CUR.r$ROUND.iperf3-server.log" 2>&1 </dev/null &
  PIDS+=("$!")
  for n in $(seq 50); do
    [[ -n $(ip netns exec "$NS_B" ss -Hltn "sport = :$IPERF_PORT" 2>/dev/null) ]] && break
    sleep 0.1
  done

  # 1. idle RTT, before anything has loaded the path
  read -r loss "R[rtt_idle]" < <(ping_avg -c "$PING_COUNT" -i 0.01)
  log "  rtt idle : ${R[rtt_idle]:-FAIL} ms (loss ${loss:-?}%)"

  # 2. TCP 1 stream, with daemon CPU accounting and a ping running alongside
  [[ -n $DA ]] && { c0a=$(cpu_ticks "$DA"); c0b=$(cpu_ticks "$DB"); }
  js=$OUT/raw/$CUR.r$ROUND.tcp1.json
  ip netns exec "$NS_A" timeout $(( TCP_SECS + 30 )) \
    iperf3 -c "$DST" -p "$IPERF_PORT" -J --connect-timeout 3000 -t "$TCP_SECS" >"$js" 2>"${js%.json}.err" &
  ipid=$!; PIDS+=("$ipid")
  sleep 1   # past the connection setup and slow start
  read -r "R[rtt_load_loss]" "R[rtt_load]" < <(ping_avg -c $(( (TCP_SECS - 2) * 20 )) -i 0.05)
  wait "$ipid"
  [[ -n $DA ]] && { c1a=$(cpu_ticks "$DA"); c1b=$(cpu_ticks "$DB"); }
  R[tcp1]=$(jnum "$js" .end.sum_received.bits_per_second | awk '{printf "%.3f", $1/1e9}')
  bytes=$(jnum "$js" .end.sum_received.bytes)
  if [[ -n $DA && -n $c0a && -n $c1a && -n $c0b && -n $c1b && -n $bytes ]]; then
    cpu=$(awk -v d=$(( c1a - c0a + c1b - c0b )) -v t="$CLK_TCK" 'BEGIN{printf "%.2f", d/t}')
    R[daemon_cpu_s]=$cpu
    R[tcp1_gb]=$(awk -v b="$bytes" 'BEGIN{printf "%.3f", b/1e9}')
    R[cpu_per_gb]=$(awk -v c="$cpu" -v b="$bytes" 'BEGIN{if (b > 0) printf "%.3f", c/(b/1e9)}')
  fi
  log "  tcp1     : ${R[tcp1]:-FAIL} Gbit/s; ping meanwhile ${R[rtt_load]:-FAIL} ms (loss ${R[rtt_load_loss]:-?}%); daemons ${R[daemon_cpu_s]:--} CPU s for ${R[tcp1_gb]:--} GB"
  sleep 0.5

  # 3. TCP 4 streams
  js=$(iperf_client tcp4 -t "$TCP_SECS" -P 4)
  R[tcp4]=$(jnum "$js" .end.sum_received.bits_per_second | awk '{printf "%.3f", $1/1e9}')
  log "  tcp4     : ${R[tcp4]:-FAIL} Gbit/s"
  sleep 0.5

  # 4. UDP at full speed; what counts is what the receiver got
  for size in "${UDP_SIZES[@]}"; do
    js=$(iperf_client "udp$size" -u -l $(( size - 28 )) -b 0 -t "$UDP_SECS")
    read -r "R[udp$size]" "R[udp${size}_loss]" < <(jq -r '.end.sum_received // .end.sum |
      "\(.packets - .lost_packets) \(.seconds) \(.lost_percent)"' "$js" 2>/dev/null |
      awk '$2 > 0 {printf "%.1f %.1f\n", $1/$2/1000, $3}')
    log "$(printf '  %-9s: ' "udp$size")${R[udp$size]:-FAIL} kpps received (loss ${R[udp${size}_loss]:-?}%)"
    sleep 0.5
  done
}

# Columns of runs.csv; report.py reads them by name.
COLS=(round impl tcp1 tcp4 udp1400 udp64 rtt_idle rtt_load cpu_per_gb
      tcp1_gb daemon_cpu_s udp1400_loss udp64_loss rtt_load_loss loadavg status)
declare -A R
K=0
bench_once() {   # bench_once SPEC
  local spec=$1 tmpl bin ok c
  CUR=$(impl_name "$spec"); DA="" DB="" DST=""
  R=([round]=$ROUND [impl]=$CUR [status]=ok [loadavg]=$(loadavg1))
  K=$((K + 1))
  # Unique per run; interface names must also differ across namespaces because
  # /var/run/wireguard/ is shared by all of them (and stay within 15 characters).
  NS_A=$NS_PREFIX-$$-$K-a NS_B=$NS_PREFIX-$$-$K-b
  VETH_A=fv$$x${K}a VETH_B=fv$$x${K}b IF_A=ft$$x${K}a IF_B=ft$$x${K}b
  log "== $CUR (round $ROUND/$RUNS, load average ${R[loadavg]})"
  if ! setup_netns; then R[status]=netns-setup-failed
  elif [[ $CUR == veth ]]; then
    DST=$UL_B; run_tests
  else
    tmpl=$(impl_template "$spec")
    bin=$(template_bin "$tmpl")
    if ! command -v "$bin" >/dev/null; then
      R[status]=not-installed; log "  skipped: $bin not found"
    elif ! start_daemon "$NS_A" "$IF_A" "$tmpl" "$OUT/raw/$CUR.r$ROUND.daemon-a.log"; then
      R[status]=daemon-a-failed
    else
      DA=$DPID
      if ! start_daemon "$NS_B" "$IF_B" "$tmpl" "$OUT/raw/$CUR.r$ROUND.daemon-b.log"; then
        R[status]=daemon-b-failed
      else
        DB=$DPID
        if ! configure_wg "$NS_A" "$IF_A" "$KEYS/a.key" $PORT_A "$(cat "$KEYS/b.pub")" $UL_B $PORT_B $TUN_A $TUN_B ||
           ! configure_wg "$NS_B" "$IF_B" "$KEYS/b.key" $PORT_B "$(cat "$KEYS/a.pub")" $UL_A $PORT_A $TUN_B $TUN_A; then
          R[status]=config-failed
        else
          ok=0
          for _ in $(seq 10); do
            ip netns exec "$NS_A" ping -q -n -c 1 -W 1 "$TUN_B" >/dev/null 2>&1 && { ok=1; break; }
          done
          if [[ $ok == 1 ]]; then
            DST=$TUN_B; run_tests
            ip netns exec "$NS_A" wg show "$IF_A" >"$OUT/raw/$CUR.r$ROUND.wg-show.txt" 2>&1
            kill -0 "$DA" 2>/dev/null && kill -0 "$DB" 2>/dev/null || R[status]=daemon-died
          else
            R[status]=no-handshake; log "  the tunnel did not come up"
          fi
        fi
      fi
    fi
  fi
  if [[ ${R[status]} == ok ]]; then
    for c in tcp1 tcp4 udp1400 udp64 rtt_idle rtt_load; do [[ -n ${R[$c]:-} ]] || R[status]=incomplete; done
  fi
  teardown
  local row=() col
  for col in "${COLS[@]}"; do row+=("${R[$col]:-}"); done
  (IFS=,; echo "${row[*]}") >>"$OUT/runs.csv"
}

# ---- main
mkdir -p "$OUT/raw"
START=$SECONDS
log "ferrotun bench -> $OUT"
log "implementations: ${IMPLS[*]}; $RUNS round(s); tcp ${TCP_SECS} s, udp ${UDP_SECS} s, $PING_COUNT pings, mtu $MTU; $(nproc) cpus"
load=$(loadavg1)
if awk -v l="$load" 'BEGIN{exit !(l >= 0.5)}'; then
  log "warning: load average $load: other work is running, the figures will be noisy"
fi
{
  echo "date: $(date -u +%FT%TZ)"; echo "kernel: $(uname -r)"; echo "cpus: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo
  echo "load average at start: $(cat /proc/loadavg)"
  echo "settings: runs=$RUNS tcp_secs=$TCP_SECS udp_secs=$UDP_SECS ping_count=$PING_COUNT mtu=$MTU quick=$QUICK"
  echo "wg: $(wg --version 2>&1)"; echo "iperf3: $(iperf3 --version 2>&1 | head -n1)"
  for spec in "${IMPLS[@]}"; do
    [[ $spec == veth ]] && continue
    tmpl=$(impl_template "$spec"); bin=$(template_bin "$tmpl")
    echo "$(impl_name "$spec"): $tmpl"
    case $(impl_name "$spec") in
      ferrotun) echo "  binary: $FERROTUN_BIN ($(stat -c %y "$FERROTUN_BIN" 2>/dev/null)), git $(git -C "$REPO" describe --always --dirty 2>/dev/null)" ;;
      wireguard-go) echo "  $(wireguard-go --version 2>&1 | head -n1)" ;;
      boringtun) echo "  $(boringtun-cli --version 2>&1 | head -n1)" ;;
    esac
  done
} >"$OUT/versions.txt" 2>&1

# One key pair per side, shared by every implementation and round.
for s in a b; do (umask 077; wg genkey >"$KEYS/$s.key"); wg pubkey <"$KEYS/$s.key" >"$KEYS/$s.pub"; done
(IFS=,; echo "${COLS[*]}") >"$OUT/runs.csv"
n=${#IMPLS[@]}
for (( ROUND = 1; ROUND <= RUNS; ROUND++ )); do
  for (( j = 0; j < n; j++ )); do
    bench_once "${IMPLS[$(( (j + ROUND - 1) % n ))]}"
  done
done
log "measurements done in $(( SECONDS - START )) s"

find "$OUT/raw" -name '*.err' -empty -delete
python3 "$HERE/report.py" "$OUT" || log "report.py failed; the raw figures are in $OUT/runs.csv"
ln -sfn "$OUT" "$(dirname "$OUT")/latest" 2>/dev/null
# Exit 3 when a run did not complete (skipped or failed implementation).
! tail -n +2 "$OUT/runs.csv" | grep -qv ',ok$' || exit 3
