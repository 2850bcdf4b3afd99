#!/usr/bin/env bash
# Memory per idle TLS keep-alive connection, or per slow reader with a large response in flight:
# ringway, nginx and HAProxy side by side.
# Run with --help for what it does and the options.
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
source "$SCRIPT_DIR/bench/common.sh"

CONNS_N=10000
CONCURRENCY=100
PROXIES=ringway,nginx,haproxy
OUT=""
SETTLE=3
PORT_BASE=19500
SLOW_READ=0
URL_PATH=""

usage() {
    cat <<EOF
Usage: scripts/idle-conns.sh [options]

Measures the resident memory each proxy needs per idle TLS keep-alive connection. Sets up the
same backend and proxies as scripts/bench.sh (one ECDSA P-256 certificate, nginx backend on
two ports pinned to the last core, each proxy pinned to the first core with one worker/thread,
TLS 1.3 only, session resumption on), with limits raised for many connections (connection
limits = N + 1000, client keep-alive timeouts 300 s). Then, one proxy at a time:

  1. RSS before: the sum of VmRSS over the proxy's processes (/proc/PID/status; nginx master +
     worker), after a few functional requests;
  2. a Python asyncio client (scripts/bench/idle_client.py, pinned to the client cores) opens
     N connections, each doing the TLS handshake and one GET /1k, and leaves them open, idle;
  3. RSS with N idle connections (after ${SETTLE} s to settle), and how many are still open;
  4. the client closes everything; RSS again after ${SETTLE} s.

With --slow-read RATE, the connections are slow readers instead of idle ones: each asks for a
4 MiB response (GET /4m) and reads its body at RATE bytes per second, so every connection has a
response in flight in the proxy, held back by the client's TCP window; the RSS is measured
every second for 30 s after the last one got its response head: the last sample is the steady
state (reported per slow reader), the highest the peak on the way there. This is the memory
per active connection: what a proxy holds for a client that reads slower than the backend
sends.

Prints a markdown table (also written to idle-conns.md and idle-conns.csv in the output dir):
RSS before / with N idle / after closing, the difference, and the difference per idle
connection. Also the proxy's CPU time spent accepting them (handshake + one request each).

Options:
  --conns N         idle connections per proxy (default: $CONNS_N)
  --concurrency N   handshakes in flight at once while opening (default: $CONCURRENCY)
  --slow-read RATE  slow readers: each connection reads a 4 MiB body at RATE bytes/s
                    (default: 0, idle connections); e.g. --conns 1000 --slow-read 32768
  --path PATH       what each connection asks for (default: /1k, or /4m with --slow-read)
  --proxies LIST    comma-separated, from ringway,nginx,haproxy (default: $PROXIES)
  --out DIR         output directory (default: bench-results/idle-<timestamp>/ in the repository)
  --ringway PATH    ringway binary (default: target/release/ringway, built if missing)
  --port-base N     ports used: N+1, N+2 (backend), N+10..N+12 (proxies) (default: $PORT_BASE)
  --nice N          nice value for the proxies, backend and client (default: $NICE)
  --keep-work       keep the temporary work directory
  -h, --help        this help

The open-files limit is raised as far as the hard limit allows (needs about N + 1000 per
process; each proxy holds N client sockets). Beyond ~15000 connections the client spreads its
source addresses over 127.0.0.x. Bounded in time: opening gives up after 300 s per proxy.
EOF
}

while (($#)); do
    case $1 in
        --conns) CONNS_N=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --slow-read) SLOW_READ=$2; shift 2 ;;
        --path) URL_PATH=$2; shift 2 ;;
        --proxies) PROXIES=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --ringway) RINGWAY_BIN=$2; shift 2 ;;
        --port-base) PORT_BASE=$2; shift 2 ;;
        --nice) NICE=$2; shift 2 ;;
        --keep-work) KEEP_WORK=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $CONNS_N =~ ^[1-9][0-9]*$ ]] || die "--conns $CONNS_N: want a positive integer"
[[ $CONCURRENCY =~ ^[1-9][0-9]*$ ]] || die "--concurrency $CONCURRENCY: want a positive integer"
[[ $SLOW_READ =~ ^[0-9]+$ ]] || die "--slow-read $SLOW_READ: want bytes per second"
if ((SLOW_READ > 0)); then
    : "${URL_PATH:=/4m}"
    SETTLE=30 # every socket buffer on the way fills, and every relay meets the client's window
else
    : "${URL_PATH:=/1k}"
fi
IFS=, read -ra PROXY_LIST <<<"$PROXIES"
for p in "${PROXY_LIST[@]}"; do
    [[ " ${ALL_PROXIES[*]} " == *" $p "* ]] || die "unknown proxy $p (want ringway, nginx, haproxy)"
done

KEEPALIVE_S=300
MAXCONN=$((CONNS_N + 1000))
NOFILE=$((CONNS_N * 2 + 1000))
CLIENT_PID=""

idle_cleanup() {
    if [[ -n $CLIENT_PID ]] && proc_alive "$CLIENT_PID"; then
        kill -TERM "$CLIENT_PID" 2>/dev/null
        sleep 1
        proc_alive "$CLIENT_PID" && kill -KILL "$CLIENT_PID" 2>/dev/null
    fi
    bench_cleanup
}
trap idle_cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init
((NOFILE >= CONNS_N + 200)) || warn "open-files limit $NOFILE is low for $CONNS_N connections"

STAMP=$(date +%Y%m%d-%H%M%S)
: "${OUT:=$REPO_DIR/bench-results/idle-$STAMP}"
mkdir -p "$OUT/logs" "$OUT/conf" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/idle-conns.csv
echo "proxy,conns_requested,opened,failed,alive,open_seconds,rss_before_kb,rss_idle_kb,rss_peak_kb,rss_closed_kb,delta_kb,kb_per_conn,peak_kb_per_conn,open_cpu_s,note" >"$CSV"
log "results in $OUT; open-files limit $NOFILE"

start_backend

# wait_line FILE REGEX PID SECONDS: waits until FILE has a line matching REGEX.
wait_line() {
    local f=$1 re=$2 pid=$3 deadline=$((SECONDS + $4))
    while ((SECONDS < deadline)); do
        grep -qE "$re" "$f" 2>/dev/null && return 0
        proc_alive "$pid" || { grep -qE "$re" "$f" 2>/dev/null; return; }
        sleep 0.5
    done
    return 1
}

for p in "${PROXY_LIST[@]}"; do
    log "$p: starting"
    start_proxy "$p" resume
    if ! msg=$(check_proxy "$p"); then warn "functional check failed: $msg"; fi
    sleep 1
    pid=${PID[$p]}
    before=$(rss_kb "$pid")
    c0=$(cpu_ticks "$pid")
    out="$OUT/logs/client-$p.txt"
    log "$p: RSS $((before / 1024)) MiB; opening $CONNS_N connections"
    nice -n "$NICE" taskset -c "$CLIENT_CPUS" python3 "$BENCH_DIR/idle_client.py" --port "${PORT[$p]}" \
        --conns "$CONNS_N" --concurrency "$CONCURRENCY" --hold 600 --open-timeout 300 \
        --path "$URL_PATH" --slow-read "$SLOW_READ" >"$out" 2>&1 &
    CLIENT_PID=$!
    note=""
    if ! wait_line "$out" '^OPENED' "$CLIENT_PID" 330; then
        note="client did not finish opening"
        warn "$p: $note: $(tail -3 "$out")"
    fi
    opened_line=$(grep '^OPENED' "$out" | tail -1)
    log "$p: $opened_line"
    # Sampled every second while settling: the last sample is the steady state, the highest
    # the peak on the way there.
    peak=0
    for ((s = 0; s < SETTLE; s++)); do
        sleep 1
        idle=$(rss_kb "$pid")
        ((idle > peak)) && peak=$idle
    done
    c1=$(cpu_ticks "$pid")
    kill -USR1 "$CLIENT_PID" 2>/dev/null
    wait_line "$out" '^ALIVE' "$CLIENT_PID" 10
    alive=$(awk '/^ALIVE/ {a = $2} END {print a + 0}' "$out")
    kill -TERM "$CLIENT_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do proc_alive "$CLIENT_PID" || break; sleep 0.1; done
    proc_alive "$CLIENT_PID" && kill -KILL "$CLIENT_PID" 2>/dev/null
    wait "$CLIENT_PID" 2>/dev/null
    CLIENT_PID=""
    sleep "$SETTLE"
    closed=$(rss_kb "$pid")
    proc_alive "$pid" || { note="${note:+$note; }$p exited"; warn "$p exited; see $OUT/logs/$p.stderr.log"; }
    ok=$(sed -nE 's/^OPENED ok=([0-9]+).*/\1/p' <<<"$opened_line")
    failed=$(sed -nE 's/^OPENED ok=[0-9]+ failed=([0-9]+).*/\1/p' <<<"$opened_line")
    secs=$(sed -nE 's/.* seconds=([0-9.]+).*/\1/p' <<<"$opened_line")
    ferr=$(sed -nE "s/.* first_error=(.*)$/\1/p" <<<"$opened_line")
    [[ -n $ferr ]] && note="${note:+$note; }first error: ${ferr//\"/\'}"
    awk -v p="$p" -v n="$CONNS_N" -v ok="${ok:-0}" -v failed="${failed:-$CONNS_N}" -v alive="$alive" \
        -v secs="${secs:-0}" -v b="$before" -v i="$idle" -v pk="$peak" -v c="$closed" -v ticks=$((c1 - c0)) \
        -v hz="$(getconf CLK_TCK)" -v note="$note" 'BEGIN {
            d = i - b
            per = alive > 0 ? sprintf("%.2f", d / alive) : ""
            pper = alive > 0 ? sprintf("%.2f", (pk - b) / alive) : ""
            gsub(/"/, "'"'"'", note)
            printf "%s,%d,%d,%d,%d,%s,%d,%d,%d,%d,%d,%s,%s,%.2f,\"%s\"\n", p, n, ok, failed, alive, secs, b, i, pk, c, d, per, pper, ticks / hz, note
        }' >>"$CSV"
    log "$p: RSS before $((before / 1024)) MiB, with $alive idle $((idle / 1024)) MiB, after close $((closed / 1024)) MiB"
    stop_proxy "$p"
done
stop_pid backend
for f in "$WORK"/logs/*; do [[ -s $f ]] && cp "$f" "$OUT/logs/"; done
for f in ringway.toml proxy-nginx.conf haproxy.cfg backend-nginx.conf; do
    [[ -f $WORK/$f ]] && cp "$WORK/$f" "$OUT/conf/"
done

{
    echo "date: $(date -Is); host: $(uname -srm), $(nproc) cores; load average at start: $LOAD_START"
    echo "ringway: $RINGWAY_VERSION (git $RINGWAY_GIT); $NGINX_VERSION; $HAPROXY_VERSION; $(openssl version | cut -d' ' -f1-2)"
    echo "cores: proxies on $PROXY_CPU, backend on $BACKEND_CPU, client on $CLIENT_CPUS; open-files limit $NOFILE; nice $NICE"
} >"$OUT/meta.txt"
python3 - "$CSV" "$CONNS_N" "$OUT/meta.txt" "$SLOW_READ" "$URL_PATH" >"$OUT/idle-conns.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = int(sys.argv[2])
slow, path = int(sys.argv[4]), sys.argv[5]
mib = lambda kb: f"{int(kb) / 1024:.1f} MiB"
for line in open(sys.argv[3]):
    print(f"- {line.strip()}")
print()
what = "idle conn"
if slow:
    what = "slow reader"
    print(f"Slow readers: {n:,} TLS connections per proxy, each asking for GET {path} and reading "
          f"its body at {slow:,} bytes/s, so each has a response in flight in the proxy, held "
          "back by the client's TCP window. RSS = sum of VmRSS over the proxy's processes, "
          "sampled every second for 30 s after the last response head; per slow reader = (RSS "
          "at the end - RSS before) / connections still open, and the same at the highest "
          "sample (peak). Proxy CPU to open: handshakes and the first bytes of each response.")
else:
    print(f"Idle TLS keep-alive connections: {n:,} per proxy (handshake + one GET {path} each, "
          "then idle). RSS = sum of VmRSS over the proxy's processes; per idle conn = (RSS with "
          "idle conns - RSS before) / connections still open. Proxy CPU to open: its CPU time "
          "for the handshakes and requests (client-bound: a Python client).")
print()
print(f"| proxy | open / alive | RSS before | RSS with {what}s | RSS after close | Δ RSS | per {what} | peak per {what} | proxy CPU to open |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
for r in rows:
    per = f"{float(r['kb_per_conn']):.1f} KiB" if r["kb_per_conn"] else "-"
    peak = f"{float(r['peak_kb_per_conn']):.1f} KiB" if r["peak_kb_per_conn"] else "-"
    print(f"| {r['proxy']} | {int(r['opened']):,} / {int(r['alive']):,} | {mib(r['rss_before_kb'])} | "
          f"{mib(r['rss_idle_kb'])} | {mib(r['rss_closed_kb'])} | {mib(r['delta_kb'])} | {per} | "
          f"{peak} | {float(r['open_cpu_s']):.2f} s |")
notes = [(r["proxy"], r["note"]) for r in rows if r["note"]]
if notes:
    print()
    print("Notes:")
    for p, note in notes:
        print(f"- {p}: {note}")
EOF
echo
cat "$OUT/idle-conns.md"
echo
log "wrote $OUT/{idle-conns.md,idle-conns.csv}"
