# shellcheck shell=bash
# Shared setup for scripts/bench.sh and scripts/idle-conns.sh (sourced, not run).
#
# Provides: tool installation, CPU layout, a temporary work dir with an ECDSA P-256 certificate
# and the backend's files, rendering of the config templates in scripts/bench/conf/, starting
# and stopping the backend (nginx) and the three proxies under test (ringway, nginx, haproxy),
# and reading a proxy's CPU time and resident memory from /proc. Every process started here is
# recorded and stopped by `bench_cleanup`, which the callers run from an EXIT trap.
#
# Everything listens on 127.0.0.1 only.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

ALL_PROXIES=(ringway nginx haproxy floor)

# Settings the callers may override before bench_init (flags map onto these).
PORT_BASE=${PORT_BASE:-19400}
KEEPALIVE_S=${KEEPALIVE_S:-60}      # proxies' client keep-alive timeout, seconds
MAXCONN=${MAXCONN:-4096}            # proxies' connection limit
NOFILE=${NOFILE:-65536}             # open-files limit asked for
RINGWAY_BIN=${RINGWAY_BIN:-}        # default: target/release/ringway (built when missing)
BASELINE_BIN=${BASELINE_BIN:-}      # bench.sh --baseline: an earlier ringway, as "ringway-base"
KEEP_WORK=${KEEP_WORK:-0}
PROXY_CPU=${PROXY_CPU:-}
BACKEND_CPU=${BACKEND_CPU:-}
CLIENT_CPUS=${CLIENT_CPUS:-}
NICE=${NICE:-0}                     # nice value for everything started (proxies, backend, clients)
# Processes are started as `nice -n N taskset -c CPUS CMD &` (nice and taskset exec, so $! is
# CMD's own pid; never through a shell function, whose `&` would make $! a subshell).

declare -A PID=()        # name -> pid of every long-running process started here
declare -A PORT=()       # name -> port
WORK=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { log "WARNING: $*"; }
die() { log "error: $*"; exit 1; }

# ensure_tools CMD...: installs the Debian packages providing the missing commands.
ensure_tools() {
    local cmd pkg missing=()
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 && continue
        case $cmd in
            gnuplot) pkg=gnuplot-nox ;;
            taskset) pkg=util-linux ;;
            ps | pgrep) pkg=procps ;;
            timeout) pkg=coreutils ;;
            *) pkg=$cmd ;;
        esac
        [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $EUID -eq 0 ]] || die "missing packages: ${missing[*]} (install them, or run as root)"
    command -v apt-get >/dev/null || die "missing packages: ${missing[*]} and no apt-get"
    log "installing: ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1 || warn "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        die "apt-get install ${missing[*]} failed"
    for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after install"; done
}

# ensure_ringway: builds target/release/ringway when missing; copies the binary into $WORK so a
# concurrent rebuild cannot swap it during the run.
ensure_ringway() {
    local bin=${RINGWAY_BIN:-$REPO_DIR/target/release/ringway}
    if [[ ! -x $bin ]]; then
        [[ -n $RINGWAY_BIN ]] && die "--ringway $RINGWAY_BIN: not an executable"
        command -v cargo >/dev/null || die "$bin missing and no cargo to build it"
        log "building ringway: cargo build --release (in $REPO_DIR)"
        (cd "$REPO_DIR" && cargo build --release) >&2 || die "cargo build --release failed"
    fi
    cp "$bin" "$WORK/ringway" || die "cannot copy $bin"
    RINGWAY_VERSION=$("$WORK/ringway" --version 2>/dev/null | head -1)
    RINGWAY_GIT=$(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo unknown)
    if [[ -n $BASELINE_BIN ]]; then
        cp "$BASELINE_BIN" "$WORK/ringway-base" || die "cannot copy $BASELINE_BIN"
    fi
}

# expand_cpus "0-2,5" -> "0 1 2 5"
expand_cpus() {
    local part list=() a b i
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then
            a=${part%-*} b=${part#*-}
            for ((i = a; i <= b; i++)); do list+=("$i"); done
        else
            list+=("$part")
        fi
    done
    echo "${list[*]}"
}

# cpu_layout: proxies on the first allowed core, the backend on the last, clients on all but the
# first (comma list), unless set by flags.
cpu_layout() {
    local allowed cpus
    allowed=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)
    read -ra cpus <<<"$(expand_cpus "$allowed")"
    local n=${#cpus[@]}
    : "${PROXY_CPU:=${cpus[0]}}"
    : "${BACKEND_CPU:=${cpus[n - 1]}}"
    if [[ -z $CLIENT_CPUS ]]; then
        if ((n > 1)); then
            CLIENT_CPUS=$(IFS=,; echo "${cpus[*]:1}")
        else
            CLIENT_CPUS=${cpus[0]}
            warn "only one core: the client shares the proxy's core; numbers will be meaningless"
        fi
    fi
    NCLIENT_CPUS=$(read -ra c <<<"$(expand_cpus "$CLIENT_CPUS")"; echo "${#c[@]}")
}

# raise_nofile N: raises this shell's open-files limit (soft and, as root, hard) towards N;
# children inherit it. Sets NOFILE to what it got (containers often cap the hard limit, and
# nginx's worker_rlimit_nofile must not ask for more than that).
raise_nofile() {
    local want=$1 hard soft
    hard=$(ulimit -Hn) soft=$(ulimit -Sn)
    [[ $soft == unlimited ]] || ((soft < want)) || want=$soft # never lower it
    if [[ $hard != unlimited ]] && ((hard < want)); then
        ulimit -Hn "$want" 2>/dev/null || want=$hard
    fi
    ulimit -Sn "$want" 2>/dev/null || warn "cannot raise the open-files limit to $want"
    NOFILE=$(ulimit -n)
    [[ $NOFILE == unlimited ]] && NOFILE=1048576
    return 0
}

# port_busy PORT: true when something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# proc_alive PID: true while PID exists and is not a zombie.
proc_alive() {
    local st
    st=$(awk '{sub(/.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

# wait_port PORT PID SECONDS: waits until PORT accepts connections; fails early if PID dies.
wait_port() {
    local port=$1 pid=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        port_busy "$port" && return 0
        proc_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# proc_tree PID: PID and all its descendants.
proc_tree() {
    local p=$1 c
    echo "$p"
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do proc_tree "$c"; done
}

# cpu_ticks PID: utime+stime (clock ticks, /proc/PID/stat fields 14 and 15) summed over PID and
# its descendants (nginx master + worker; all threads are included in a process's own line).
cpu_ticks() {
    local total=0 p rest fields
    for p in $(proc_tree "$1"); do
        rest=$(<"/proc/$p/stat") 2>/dev/null || continue
        read -ra fields <<<"${rest##*) }" # fields[0] is field 3 (state): field N is fields[N-3]
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

# status_kb FIELD PID: a kB field of /proc/PID/status (VmRSS, VmHWM) summed over PID and its
# descendants.
status_kb() {
    local total=0 p v
    for p in $(proc_tree "$2"); do
        v=$(awk -v f="$1:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# rss_kb PID: resident memory now (VmRSS, kB) of PID and its descendants.
rss_kb() { status_kb VmRSS "$1"; }

# peak_rss_kb PID: the peak resident memory (VmHWM, kB) of each process, summed over PID and its
# descendants.
peak_rss_kb() { status_kb VmHWM "$1"; }

# render TEMPLATE OUT: fills @NAME@ placeholders from the shell variables of the same name
# (prefixed T_ when set, e.g. T_PORT) and the globals WORK, BACKEND1, BACKEND2, ...
render() {
    local tpl=$1 out=$2 args=() name val
    for name in WORK BACKEND1 BACKEND2 BACKEND_TLS PORT KEEPALIVE MAXCONN WORKER_CONNECTIONS NOFILE NGINX_SESSION_CACHE \
        NGINX_TICKETS HAPROXY_CACHESIZE HAPROXY_BIND_OPTS RINGWAY_SESSION_CACHE RINGWAY_TICKETS; do
        local tv="T_$name"
        val=${!tv-}
        args+=(-e "s|@${name}@|${val}|g")
    done
    sed "${args[@]}" "$tpl" >"$out"
    if grep -q '@[A-Z0-9_]*@' "$out"; then die "unrendered placeholder in $out"; fi
}

# bench_init: work dir, tools, CPU layout, certificate, backend files, ringway binary.
bench_init() {
    ensure_tools nginx haproxy openssl curl taskset ps timeout awk sed python3 "$@"
    cpu_layout
    WORK=$(mktemp -d /tmp/ringway-bench.XXXXXX) || die "mktemp failed"
    mkdir -p "$WORK/logs" "$WORK/www" "$WORK/nginx-tmp"
    raise_nofile "$NOFILE"
    # ECDSA P-256, one certificate for every proxy.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || die "openssl req failed"
    cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/cert+key.pem"
    head -c 1024 /dev/urandom >"$WORK/www/1k"
    head -c 65536 /dev/urandom >"$WORK/www/64k"
    head -c 4194304 /dev/urandom >"$WORK/www/4m"
    head -c 16384 /dev/urandom >"$WORK/body16k"
    printf 'ok\n' >"$WORK/www/post" # the static handler answers POST to it with 405 (see conf)
    ensure_ringway
    BACKEND1=$((PORT_BASE + 1)) BACKEND2=$((PORT_BASE + 2)) BACKEND_TLS=$((PORT_BASE + 3))
    PORT[backend1]=$BACKEND1 PORT[backend2]=$BACKEND2 PORT[backend-tls]=$BACKEND_TLS
    PORT[ringway]=$((PORT_BASE + 10)) PORT[nginx]=$((PORT_BASE + 11)) PORT[haproxy]=$((PORT_BASE + 12))
    PORT[ringway-base]=$((PORT_BASE + 13)) PORT[floor]=$((PORT_BASE + 14))
    local n p
    for n in backend1 backend2 backend-tls ringway nginx haproxy ringway-base floor; do
        p=${PORT[$n]}
        port_busy "$p" && die "127.0.0.1:$p ($n) is in use; pick other ports with --port-base"
    done
    NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/|nginx/|')
    HAPROXY_VERSION=$(haproxy -v 2>&1 | awk 'NR==1 {print "haproxy/" $3}')
    log "work dir $WORK; cores: proxy $PROXY_CPU, backend $BACKEND_CPU, client $CLIENT_CPUS"
}

# stop_pid NAME: SIGTERM, up to 5 s, then SIGKILL; reaps it.
stop_pid() {
    local name=$1 pid=${PID[$1]:-} i
    [[ -n $pid ]] || return 0
    if proc_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 50; i++)); do proc_alive "$pid" || break; sleep 0.1; done
        if proc_alive "$pid"; then
            warn "$name (pid $pid) still running 5 s after SIGTERM: SIGKILL"
            # shellcheck disable=SC2046 # one word per pid
            kill -KILL -- $(proc_tree "$pid") 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null
    unset "PID[$name]"
}

bench_cleanup() {
    local name pid args
    trap - INT TERM HUP
    for name in "${!PID[@]}"; do stop_pid "$name"; done
    if [[ -n $WORK && -d $WORK ]]; then
        # Safety net: anything still running from this run's work dir (its command line names
        # the unique temporary directory) is ours and is stopped.
        for pid in $(ps -eo pid= 2>/dev/null); do
            args=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
            if [[ $args == *"$WORK/"* && $pid != "$$" ]]; then
                warn "stopping leftover pid $pid: ${args:0:100}"
                kill -TERM "$pid" 2>/dev/null
            fi
        done
        if ((KEEP_WORK)); then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    fi
}

# start_backend: the nginx backend, one worker, pinned to BACKEND_CPU.
start_backend() {
    local T_WORK=$WORK T_BACKEND1=$BACKEND1 T_BACKEND2=$BACKEND2 T_BACKEND_TLS=$BACKEND_TLS
    local T_NOFILE=$NOFILE T_WORKER_CONNECTIONS=$((MAXCONN + 1024))
    render "$BENCH_DIR/conf/backend-nginx.conf" "$WORK/backend-nginx.conf"
    nice -n "$NICE" taskset -c "$BACKEND_CPU" nginx -p "$WORK" -e "$WORK/logs/backend-error.log" \
        -c "$WORK/backend-nginx.conf" >"$WORK/logs/backend.out" 2>&1 &
    PID[backend]=$!
    if ! wait_port "$BACKEND1" "${PID[backend]}" 10 || ! wait_port "$BACKEND2" "${PID[backend]}" 10; then
        cat "$WORK/logs/backend.out" "$WORK/logs/backend-error.log" >&2
        die "backend nginx did not start"
    fi
    # The POST sink must answer and keep the connection: two POSTs, one connection.
    local out
    out=$(curl -s --max-time 5 -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
        --data-binary @"$WORK/body16k" "http://127.0.0.1:$BACKEND1/post" "http://127.0.0.1:$BACKEND1/post")
    [[ $(echo "$out" | awk '$1==200 {n++; c+=$2} END {print n+0, c+0}') == "2 1" ]] ||
        die "backend POST check failed (want two 200s over one connection): $out"
}

# start_proxy NAME PROFILE: starts one proxy pinned to PROXY_CPU. PROFILE "resume" enables TLS
# session resumption (tickets + cache, the usual setup); "full" disables it everywhere, so every
# new connection is a full handshake.
start_proxy() {
    local name=$1 profile=${2:-resume}
    local T_WORK=$WORK T_BACKEND1=$BACKEND1 T_BACKEND2=$BACKEND2 T_BACKEND_TLS=$BACKEND_TLS
    local T_PORT=${PORT[$name]}
    local T_KEEPALIVE=$KEEPALIVE_S T_MAXCONN=$MAXCONN T_NOFILE=$NOFILE
    local T_WORKER_CONNECTIONS=$((MAXCONN + 1024)) # nginx counts its backend connections too
    local T_NGINX_SESSION_CACHE="shared:SSL:10m" T_NGINX_TICKETS=on
    local T_HAPROXY_CACHESIZE=20000 T_HAPROXY_BIND_OPTS=""
    local T_RINGWAY_SESSION_CACHE=4096 T_RINGWAY_TICKETS=true
    if [[ $profile == full ]]; then
        T_NGINX_SESSION_CACHE=off T_NGINX_TICKETS=off
        T_HAPROXY_CACHESIZE=0 T_HAPROXY_BIND_OPTS=no-tls-tickets
        T_RINGWAY_SESSION_CACHE=0 T_RINGWAY_TICKETS=false
    fi
    local errlog="$WORK/logs/$name.stderr.log"
    # Checked again here: ringway and HAProxy listen with SO_REUSEPORT, so a second instance
    # would start silently beside a leftover one and share its traffic.
    port_busy "${PORT[$name]}" && die "127.0.0.1:${PORT[$name]} ($name) is already in use"
    {
        echo "=== $(date -Is) start ($profile)"
    } >>"$errlog"
    case $name in
        ringway | ringway-base)
            render "$BENCH_DIR/conf/ringway.toml" "$WORK/$name.toml"
            if [[ $name == ringway && -n ${RINGWAY_EXTRA:-} ]]; then
                # --ringway-extra: more tables for the ringway under test only (not the baseline).
                render "$RINGWAY_EXTRA" "$WORK/ringway-extra.toml"
                cat "$WORK/ringway-extra.toml" >>"$WORK/$name.toml"
            fi
            "$WORK/$name" check --config "$WORK/$name.toml" >>"$errlog" 2>&1 ||
                { cat "$errlog" >&2; die "$name check rejected $WORK/$name.toml"; }
            nice -n "$NICE" taskset -c "$PROXY_CPU" env -u RUST_LOG "$WORK/$name" run --config "$WORK/$name.toml" >>"$errlog" 2>&1 &
            ;;
        nginx)
            render "$BENCH_DIR/conf/proxy-nginx.conf" "$WORK/proxy-nginx.conf"
            nice -n "$NICE" taskset -c "$PROXY_CPU" nginx -p "$WORK" -e "$WORK/logs/nginx-error.log" \
                -c "$WORK/proxy-nginx.conf" >>"$errlog" 2>&1 &
            ;;
        haproxy)
            render "$BENCH_DIR/conf/haproxy.cfg" "$WORK/haproxy.cfg"
            haproxy -c -q -f "$WORK/haproxy.cfg" >>"$errlog" 2>&1 ||
                { cat "$errlog" >&2; die "haproxy -c rejected $WORK/haproxy.cfg"; }
            nice -n "$NICE" taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy.cfg" >>"$errlog" 2>&1 &
            ;;
        floor)
            render "$BENCH_DIR/conf/haproxy-floor.cfg" "$WORK/haproxy-floor.cfg"
            haproxy -c -q -f "$WORK/haproxy-floor.cfg" >>"$errlog" 2>&1 ||
                { cat "$errlog" >&2; die "haproxy -c rejected $WORK/haproxy-floor.cfg"; }
            nice -n "$NICE" taskset -c "$PROXY_CPU" haproxy -db -f "$WORK/haproxy-floor.cfg" >>"$errlog" 2>&1 &
            ;;
        *) die "unknown proxy $name" ;;
    esac
    PID[$name]=$!
    wait_port "${PORT[$name]}" "${PID[$name]}" 15 ||
        { tail -20 "$errlog" >&2; die "$name did not start listening on 127.0.0.1:${PORT[$name]}"; }
}

stop_proxy() { stop_pid "$1"; }

# check_proxy NAME: GET /1k, GET /64k, and two 16 KiB POSTs over one TLS connection. Prints
# the reason and returns 1 on failure.
check_proxy() {
    local name=$1 url="https://127.0.0.1:${PORT[$1]}" out
    out=$(curl -sk --http1.1 --max-time 5 -o /dev/null -o /dev/null -w '%{http_code} %{size_download}\n' \
        "$url/1k" "$url/64k" 2>&1)
    if [[ $(echo "$out" | tr '\n' ' ') != "200 1024 200 65536 " ]]; then
        echo "$name: GET /1k /64k gave: $(echo "$out" | tr '\n' ' ')"
        return 1
    fi
    out=$(curl -sk --http1.1 --max-time 5 -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
        -H 'Content-Type: application/octet-stream' --data-binary @"$WORK/body16k" \
        "$url/post" "$url/post" 2>&1)
    if [[ $(echo "$out" | awk '$1==200 {n++; c+=$2} END {print n+0, c+0}') != "2 1" ]]; then
        echo "$name: two POST /post on one connection gave: $(echo "$out" | tr '\n' ' ')"
        return 1
    fi
}

# tls_info NAME: protocol, cipher suite, key exchange and signature an OpenSSL client gets, and
# whether the proxy resumes TLS sessions (scripts/bench/tls_probe.py).
tls_info() {
    local info
    info=$(timeout 5 openssl s_client -connect "127.0.0.1:${PORT[$1]}" -servername localhost -brief \
        </dev/null 2>&1 | awk -F': ' '/^Protocol version|^Ciphersuite|^Server Temp Key|^Signature type/ {printf "%s%s", sep, $2; sep=", "} END {print ""}')
    echo "$info; $(timeout 15 python3 "$BENCH_DIR/tls_probe.py" "${PORT[$1]}")"
}
