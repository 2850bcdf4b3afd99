#!/usr/bin/env bash
# Side-by-side benchmark of ringway, nginx and HAProxy as TLS-terminating proxies.
# Run with --help for what it does and the options.
set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
source "$SCRIPT_DIR/bench/common.sh"

DURATION=10s
ROUNDS=3
CONNS=50
HS_CONNS=""
THREADS=""
WARMUP=2s
SCENARIOS=get1k,get64k,handshake,post16k
PROXIES=ringway,nginx,haproxy,floor
OUT=""

usage() {
    cat <<EOF
Usage: scripts/bench.sh [options]

Benchmarks ringway, nginx and HAProxy side by side as HTTPS (TLS 1.3) load balancers on this
machine, everything on 127.0.0.1:

  * one ECDSA P-256 certificate (openssl), shared by all three proxies;
  * a backend: nginx, one worker, pinned to the last core, on two ports, serving /1k
    (1024 bytes), /64k (65536 bytes) and POST /post (reads the whole body, answers "ok");
  * the proxies, each pinned to the first core, one worker/thread each, round robin over the
    two backend ports with kept-alive backend connections, X-Forwarded-For (and -Proto, -Host,
    Forwarded), TLS 1.3 only, no access logs. Their configs are the templates in
    scripts/bench/conf/ (ringway.toml, proxy-nginx.conf, haproxy.cfg);
  * the L4 relay floor ("floor"): HAProxy in TCP mode on the same core, passing wrk's TLS
    bytes to a TLS port of the backend nginx (scripts/bench/conf/haproxy-floor.cfg). It does
    no TLS and no HTTP: its CPU per request is the cost of moving the bytes through one
    process, which no proxy can go below, and the tables give each proxy's cost above it. It
    is not a proxy to compare with (its TLS is done by the backend, on the client core);
  * wrk, pinned to every core but the first, drives each proxy in turn, rounds alternating
    A B C A B C, per scenario (after an unmeasured warm-up run per proxy).

Scenarios:
  get1k      keep-alive GET of 1 KiB
  get64k     keep-alive GET of 64 KiB
  handshake  a new TLS connection per request, full handshake: wrk sends "Connection: close"
             and reconnects after every response; session resumption (tickets and caches) is
             switched off on all proxies for this scenario, because wrk resumes sessions when
             the server offers it (so without that it would measure resumption)
  resume     (not in the default list) like handshake, with resumption left on (tickets)
  post16k    keep-alive POST of a 16 KiB body
  NAME@N     any of the above with N connections instead of --connections, e.g. get1k@5000
  concurrency  shorthand for get1k@1000,get64k@1000,get1k@2000,get64k@2000,get1k@5000,
             get64k@5000: the load of an edge with thousands of clients (connection counts
             above what the open-files limit allows are lowered to fit, with a warning)

For every proxy, scenario and round: requests/s, latency p50/p99 (wrk), errors (wrk's
connect/read/write/timeout errors plus responses >= 400), the proxy's peak resident memory
(VmHWM of all its processes since it was started for the scenario), and its own CPU time per
request: utime+stime from /proc/PID/stat of all its processes (nginx master and worker, all
threads) before and after the run, over the requests served. Also the proxy's CPU use (% of
one core; near 100% means the proxy was the bottleneck, lower means the client or backend
was), the other load on the proxy's core (busy time not spent in the proxy: softirq, other
processes; high values flag a noisy run on a shared machine), and new TCP connections accepted
per request (Tcp PassiveOpens; ~1.0 in handshake, ~0 with keep-alive).

Summary = median over rounds (errors: sum), and ringway's CPU per request and requests/s
relative to each other proxy, round by round (median of the per-round ratios and their range).
Written to the output directory:
  summary.md    the markdown tables (also printed at the end)
  summary.csv   one row per scenario and proxy
  raw.csv       one row per run (every round)
  cpu-per-request.png   CPU µs/request by scenario, one bar per proxy
  wrk/          each wrk output;  logs/  the proxies' and backend's stderr/error logs
  conf/         the configs used;  meta.txt  versions, machine, settings

Options:
  --duration D      length of each measured run, wrk syntax (default: $DURATION)
  --rounds N        rounds per scenario (default: $ROUNDS)
  --connections N   wrk connections for the keep-alive scenarios (default: $CONNS)
  --handshake-connections N
                    wrk connections for handshake/resume (default: same as --connections)
  --threads N       wrk threads (default: number of client cores)
  --warmup D        unmeasured warm-up run per proxy and scenario; 0 to skip (default: $WARMUP)
  --scenarios LIST  comma-separated (default: $SCENARIOS)
  --proxies LIST    comma-separated, from ringway,nginx,haproxy,floor (default: $PROXIES)
  --out DIR         output directory (default: bench-results/<timestamp>/ in the repository)
  --ringway PATH    ringway binary (default: target/release/ringway, built if missing; it is
                    copied before the run, so a rebuild during the run does not affect it)
  --ringway-extra FILE
                    TOML tables appended to the config of the ringway under test only (not to
                    the baseline's), rendered like the templates (@WORK@ is the work
                    directory): e.g. scripts/bench/conf/observe.toml turns the access log and
                    the admin listener on, to measure what they cost against --baseline
  --baseline PATH   another ringway binary (an earlier build) to measure side by side as proxy
                    "ringway-base", right after ringway in every round, with the same config:
                    what a change bought, in one run (port N+13)
  --port-base N     ports used: N+1, N+2 (backend), N+10..N+12 (proxies) (default: $PORT_BASE)
  --proxy-cpu N     core for the proxies (default: first allowed core)
  --backend-cpu N   core for the backend (default: last allowed core)
  --client-cpus L   cores for wrk, taskset list (default: all allowed cores but the first)
  --nice N          run the proxies, backend and wrk at this nice value, e.g. -10 on a machine
                    shared with other work, to keep other processes off the measured cores
                    (default: $NICE)
  --keep-work       keep the temporary work directory (certificate, rendered configs)
  -h, --help        this help

Missing tools (nginx, haproxy, wrk, gnuplot-nox, python3, curl, openssl) are installed with
apt-get when running as root. Every process started is stopped on exit, also on Ctrl-C.
Example: scripts/bench.sh --duration 3s --rounds 1 --scenarios get1k,handshake
EOF
}

dur_seconds() { # "10s" "2m" "500ms" "7" -> whole seconds (rounded up)
    local d=$1
    case $d in
        *ms) echo $(((${d%ms} + 999) / 1000)) ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) echo "$d" ;;
    esac
}

while (($#)); do
    case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --handshake-connections) HS_CONNS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --proxies) PROXIES=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --ringway) RINGWAY_BIN=$2; shift 2 ;;
        --baseline) BASELINE_BIN=$2; shift 2 ;;
        --ringway-extra) RINGWAY_EXTRA=$(realpath "$2"); shift 2 ;;
        --port-base) PORT_BASE=$2; shift 2 ;;
        --proxy-cpu) PROXY_CPU=$2; shift 2 ;;
        --backend-cpu) BACKEND_CPU=$2; shift 2 ;;
        --client-cpus) CLIENT_CPUS=$2; shift 2 ;;
        --nice) NICE=$2; shift 2 ;;
        --keep-work) KEEP_WORK=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done

[[ $DURATION =~ ^[0-9]+(ms|s|m|h)?$ ]] || die "--duration $DURATION: want e.g. 10s"
[[ $WARMUP =~ ^[0-9]+(ms|s|m|h)?$ ]] || die "--warmup $WARMUP: want e.g. 2s"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds $ROUNDS: want a positive integer"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "--connections $CONNS: want a positive integer"
: "${HS_CONNS:=$CONNS}"
[[ $HS_CONNS =~ ^[1-9][0-9]*$ ]] || die "--handshake-connections $HS_CONNS: want a positive integer"
SCENARIOS=${SCENARIOS//concurrency/get1k@1000,get64k@1000,get1k@2000,get64k@2000,get1k@5000,get64k@5000}
IFS=, read -ra SCEN_LIST <<<"$SCENARIOS"
IFS=, read -ra PROXY_LIST <<<"$PROXIES"
if [[ -n $BASELINE_BIN ]]; then
    [[ -x $BASELINE_BIN ]] || die "--baseline $BASELINE_BIN: not an executable"
    ALL_PROXIES+=(ringway-base)
    # Right after ringway: the two builds run next to each other in every round.
    with_base=()
    for p in "${PROXY_LIST[@]}"; do
        with_base+=("$p")
        [[ $p == ringway ]] && with_base+=(ringway-base)
    done
    [[ " ${with_base[*]} " == *" ringway-base "* ]] || with_base=(ringway-base "${with_base[@]}")
    PROXY_LIST=("${with_base[@]}")
fi
for s in "${SCEN_LIST[@]}"; do
    [[ $s =~ ^(get1k|get64k|handshake|resume|post16k)(@[1-9][0-9]*)?$ ]] || die "unknown scenario $s (see --help)"
done
for p in "${PROXY_LIST[@]}"; do
    [[ " ${ALL_PROXIES[*]} " == *" $p "* ]] || die "unknown proxy $p (want ringway, nginx, haproxy, floor)"
done
# Connections per scenario: NAME@N, else --connections (--handshake-connections). Each proxy
# needs about two descriptors per client connection (one to the client, one to a backend):
# counts above what the open-files limit allows are lowered to fit.
CONN_CAP=$(( ($(ulimit -Hn | sed 's/unlimited/1048576/') - 1024) / 2 ))
declare -A SCEN_CONNS=()
MAX_SCEN_CONNS=0
for s in "${SCEN_LIST[@]}"; do
    case $s in
        *@*) n=${s#*@} ;;
        handshake | resume) n=$HS_CONNS ;;
        *) n=$CONNS ;;
    esac
    if ((n > CONN_CAP)); then
        warn "$s: $n connections do not fit the open-files limit ($(ulimit -Hn)): using $CONN_CAP"
        n=$CONN_CAP
    fi
    SCEN_CONNS[$s]=$n
    ((n > MAX_SCEN_CONNS)) && MAX_SCEN_CONNS=$n
done
# Connection limits of the proxies: far above what wrk opens.
MAXCONN=$((MAX_SCEN_CONNS + 4096))

trap bench_cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

bench_init wrk gnuplot
[[ -n $THREADS ]] || THREADS=$NCLIENT_CPUS
for s in "${SCEN_LIST[@]}"; do
    ((THREADS <= SCEN_CONNS[$s])) || die "--threads $THREADS is more than the connections of $s"
done
CLK_TCK=$(getconf CLK_TCK)
# wrk's target host (see run_wrk): "localhost" when it is 127.0.0.1 here and nothing answers on
# [::1] at the proxies' ports (wrk tries the addresses in turn), else the bare address.
TARGET_HOST=localhost
if ! getent ahosts localhost | awk '{print $1}' | grep -qx 127.0.0.1; then
    TARGET_HOST=127.0.0.1
else
    for p in "${PROXY_LIST[@]}"; do
        if (exec 3<>"/dev/tcp/::1/${PORT[$p]}") 2>/dev/null; then TARGET_HOST=127.0.0.1; fi
    done
fi
[[ $TARGET_HOST == localhost ]] || warn "wrk will use https://127.0.0.1 (sent as SNI; ringway logs a warning per handshake)"

STAMP=$(date +%Y%m%d-%H%M%S)
: "${OUT:=$REPO_DIR/bench-results/$STAMP}"
mkdir -p "$OUT/wrk" "$OUT/logs" "$OUT/conf" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/raw.csv
echo "timestamp,scenario,round,proxy,duration_s,connections,threads,requests,rps,lat_p50_us,lat_p90_us,lat_p99_us,lat_max_us,err_connect,err_read,err_write,err_status,err_timeout,errors,proxy_cpu_ticks,clk_tck,proxy_cpu_s,cpu_us_per_req,proxy_cpu_pct,core_other_pct,tcp_accepts,accepts_per_req,bytes,wrk_rc,peak_rss_kb,note" >"$RAW"

# --- scenario definitions ------------------------------------------------------------------
scenario_path() { case ${1%@*} in get1k | handshake | resume) echo /1k ;; get64k) echo /64k ;; post16k) echo /post ;; esac; }
scenario_profile() { case ${1%@*} in handshake) echo full ;; *) echo resume ;; esac; }
scenario_conns() { echo "${SCEN_CONNS[$1]}"; }
scenario_lua() { # writes the wrk script of scenario $1 to $2
    {
        case ${1%@*} in
            handshake | resume) echo 'wrk.headers["Connection"] = "close"' ;;
            post16k)
                echo 'wrk.method = "POST"'
                echo 'wrk.body = string.rep("x", 16384)'
                echo 'wrk.headers["Content-Type"] = "application/octet-stream"'
                ;;
        esac
        cat "$BENCH_DIR/wrk/report.lua"
    } >"$2"
}

# --- measurements --------------------------------------------------------------------------
core_busy_ticks() { # busy ticks (all but idle and iowait) of core $1 from /proc/stat
    awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
passive_opens() { awk '/^Tcp:/ {if (!h) {for (i = 1; i <= NF; i++) if ($i == "PassiveOpens") k = i; h = 1} else print $k}' /proc/net/snmp; }

# run_wrk PROXY SCENARIO DURATION OUTFILE: one wrk run, bounded in time; returns wrk's status.
# The URL names "localhost" (127.0.0.1; wrk skips ::1, where nothing listens) rather than the
# address: wrk sends the URL's host as SNI, and an IP address there is not a valid SNI name
# (rustls logs a warning for each such handshake).
run_wrk() {
    local proxy=$1 scen=$2 dur=$3 outf=$4 conns
    conns=$(scenario_conns "$scen")
    timeout --foreground -k 5 $(($(dur_seconds "$dur") + 30)) \
        nice -n "$NICE" taskset -c "$CLIENT_CPUS" wrk -t"$THREADS" -c"$conns" -d"$dur" --timeout 5s --latency \
        -s "$WORK/$scen.lua" "https://$TARGET_HOST:${PORT[$proxy]}$(scenario_path "$scen")" >"$outf" 2>&1
}

# ensure_up PROXY PROFILE: restarts a proxy that died (and says so loudly).
ensure_up() {
    local p=$1
    if ! proc_alive "${PID[$p]}"; then
        wait "${PID[$p]}" 2>/dev/null
        local rc=$?
        warn "$p (pid ${PID[$p]}) is gone (exit status $rc); last lines of its log:"
        tail -15 "$WORK/logs/$p.stderr.log" >&2
        unset "PID[$p]"
        start_proxy "$p" "$2"
        NOTE="$p had exited (status $rc) before this run; restarted"
    fi
}

# measure SCENARIO ROUND PROXY
measure() {
    local scen=$1 round=$2 p=$3 profile conns
    profile=$(scenario_profile "$scen")
    conns=$(scenario_conns "$scen")
    NOTE=""
    ensure_up "$p" "$profile"
    local pid=${PID[$p]} outf="$OUT/wrk/$scen-r$round-$p.txt"
    local t0 t1 c0 c1 k0 k1 a0 a1 rc
    c0=$(cpu_ticks "$pid"); k0=$(core_busy_ticks "$PROXY_CPU"); a0=$(passive_opens); t0=$(date +%s%N)
    run_wrk "$p" "$scen" "$DURATION" "$outf"
    rc=$?
    ((rc == 126 || rc == 127)) && die "could not run wrk (status $rc): $(head -c 300 "$outf")"
    sleep 0.3 # let the proxy finish closing what wrk left behind; counted in its CPU time
    c1=$(cpu_ticks "$pid"); k1=$(core_busy_ticks "$PROXY_CPU"); a1=$(passive_opens); t1=$(date +%s%N)
    local hwm
    hwm=$(peak_rss_kb "$pid")
    if ! proc_alive "$pid"; then
        NOTE="${NOTE:+$NOTE; }$p exited during the run"
        warn "$p exited during $scen round $round; see $OUT/logs/$p.stderr.log"
    fi
    ((rc == 124 || rc == 137)) && NOTE="${NOTE:+$NOTE; }wrk killed by the time limit"
    local line
    line=$(grep '^BENCH ' "$outf" | tail -1)
    [[ -n $line ]] || { NOTE="${NOTE:+$NOTE; }no wrk summary (status $rc)"; line="BENCH requests=0 duration_us=$(((t1 - t0) / 1000))"; warn "wrk gave no summary for $p/$scen (status $rc): $(head -c 300 "$outf")"; }
    local -A v=([requests]=0 [duration_us]=1 [bytes]=0 [err_connect]=0 [err_read]=0 [err_write]=0 [err_status]=0 [err_timeout]=0 [lat_p50_us]=0 [lat_p90_us]=0 [lat_p99_us]=0 [lat_max_us]=0)
    local kv
    for kv in ${line#BENCH }; do v[${kv%%=*}]=${kv#*=}; done
    local row
    row=$(awk -v ts="$(date -Is)" -v scen="$scen" -v round="$round" -v p="$p" -v conns="$conns" \
        -v threads="$THREADS" -v req="${v[requests]}" -v dus="${v[duration_us]}" \
        -v p50="${v[lat_p50_us]}" -v p90="${v[lat_p90_us]}" -v p99="${v[lat_p99_us]}" -v pmax="${v[lat_max_us]}" \
        -v ec="${v[err_connect]}" -v er="${v[err_read]}" -v ew="${v[err_write]}" -v es="${v[err_status]}" \
        -v et="${v[err_timeout]}" -v ticks=$((c1 - c0)) -v hz="$CLK_TCK" -v core=$((k1 - k0)) \
        -v wall_ns=$((t1 - t0)) -v acc=$((a1 - a0)) -v bytes="${v[bytes]}" -v rc="$rc" -v hwm="$hwm" -v note="$NOTE" 'BEGIN {
            dur = dus / 1e6; wall = wall_ns / 1e9; cpu = ticks / hz
            rps = dur > 0 ? req / dur : 0
            errs = ec + er + ew + es + et
            upr = req > 0 ? cpu * 1e6 / req : ""
            pct = wall > 0 ? 100 * cpu / wall : 0
            other = wall > 0 ? 100 * (core - ticks) / hz / wall : 0
            if (other < 0) other = 0 # tick granularity
            apr = req > 0 ? sprintf("%.3f", acc / req) : ""
            gsub(/"/, "'"'"'", note)
            printf "%s,%s,%d,%s,%.3f,%d,%d,%d,%.1f,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%.2f,%s,%.1f,%.1f,%d,%s,%d,%d,%d,\"%s\"\n",
                ts, scen, round, p, dur, conns, threads, req, rps, p50, p90, p99, pmax, ec, er, ew, es, et,
                errs, ticks, hz, cpu, (upr == "" ? "" : sprintf("%.2f", upr)), pct, other, acc, apr, bytes, rc, hwm, note
        }')
    echo "$row" >>"$RAW"
    awk -F, '{printf "  %-12s r%s %-8s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %d  CPU %s µs/req (%s%% of a core; other load on core: %s%%; accepts/req %s; peak RSS %.0f MiB)\n",
        $2, $3, $4, $9, $10/1000, $12/1000, $19, ($23 == "" ? "-" : $23), $24, $25, ($27 == "" ? "-" : $27), $30/1024}' <<<"$row" >&2
    [[ -n $NOTE ]] && warn "$p/$scen r$round: $NOTE"
    return 0
}

# --- run -----------------------------------------------------------------------------------
{
    echo "date: $(date -Is)"
    echo "host: $(uname -srm); $(nproc) cores allowed; $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "ringway: $RINGWAY_VERSION (git $RINGWAY_GIT); $NGINX_VERSION; $HAPROXY_VERSION; $(openssl version); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    [[ -n $BASELINE_BIN ]] && echo "ringway-base: $BASELINE_BIN ($("$WORK/ringway-base" --version 2>/dev/null | head -1))"
    echo "cores: proxies on $PROXY_CPU, backend on $BACKEND_CPU, wrk on $CLIENT_CPUS; nice $NICE"
    echo "settings: duration $DURATION, rounds $ROUNDS, connections $CONNS (handshake $HS_CONNS), wrk threads $THREADS, warm-up $WARMUP"
    echo "scenarios: ${SCEN_LIST[*]}; proxies: ${PROXY_LIST[*]}"
} >"$OUT/meta.txt"
log "results in $OUT"
sed 's/^/  /' "$OUT/meta.txt" >&2

start_backend
cp "$WORK/backend-nginx.conf" "$OUT/conf/"

for scen in "${SCEN_LIST[@]}"; do
    profile=$(scenario_profile "$scen")
    scenario_lua "$scen" "$WORK/$scen.lua"
    log "scenario $scen: (re)starting proxies (TLS resumption: $([[ $profile == full ]] && echo off || echo on))"
    for p in "${PROXY_LIST[@]}"; do
        stop_proxy "$p"
        start_proxy "$p" "$profile"
        if ! msg=$(check_proxy "$p"); then
            warn "functional check failed: $msg"
            echo "$scen: functional check failed: $msg" >>"$OUT/meta.txt"
        fi
        info="$p: $(tls_info "$p")"
        log "  $info"
        echo "$scen: $info" >>"$OUT/meta.txt"
    done
    cp "$WORK/ringway.toml" "$WORK/proxy-nginx.conf" "$WORK/haproxy.cfg" "$OUT/conf/" 2>/dev/null
    [[ $profile == full ]] && for f in ringway.toml proxy-nginx.conf haproxy.cfg; do
        [[ -f $WORK/$f ]] && cp "$WORK/$f" "$OUT/conf/handshake-$f"
    done
    if [[ $WARMUP != 0 ]]; then
        for p in "${PROXY_LIST[@]}"; do
            run_wrk "$p" "$scen" "$WARMUP" "$OUT/wrk/$scen-warmup-$p.txt" ||
                warn "warm-up of $p/$scen: wrk status $?"
        done
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        for p in "${PROXY_LIST[@]}"; do measure "$scen" "$round" "$p"; done
    done
done

for p in "${PROXY_LIST[@]}" backend; do stop_pid "$p"; done
for f in "$WORK"/logs/*; do [[ -s $f ]] && cp "$f" "$OUT/logs/"; done

python3 "$BENCH_DIR/report.py" --raw "$RAW" --out "$OUT" --meta "$OUT/meta.txt" \
    --proxies "$(IFS=,; echo "${PROXY_LIST[*]}")" --scenarios "$SCENARIOS" || die "report failed"
if command -v gnuplot >/dev/null; then
    gnuplot -e "datafile='$OUT/chart.dat'; outfile='$OUT/cpu-per-request.png'; scenarios='${SCEN_LIST[*]}'; proxies='${PROXY_LIST[*]}'" \
        "$BENCH_DIR/chart.gp" 2>"$OUT/logs/gnuplot.log" || warn "gnuplot failed: $(cat "$OUT/logs/gnuplot.log")"
fi
echo
cat "$OUT/summary.md"
echo
log "wrote $OUT/{summary.md,summary.csv,raw.csv,cpu-per-request.png}"
