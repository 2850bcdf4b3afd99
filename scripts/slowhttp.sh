#!/usr/bin/env bash
# Opt-in: slowloris, slow body and slow read against a running ringway, with slowhttptest.
#
#   scripts/slowhttp.sh [--url https://localhost:8443/] [--conns 1000] [--duration 30]
#
# Starts `ringway demo` on 127.0.0.1:8443 when --url is not given (and stops it afterwards),
# runs the three slowhttptest attacks one after another, and reports for each what
# slowhttptest measured (connections pending/connected/closed and whether the service stayed
# available) plus whether a well-behaved client was still served right after. Everything stays
# on this machine. Needs the Debian package slowhttptest (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

url=""
conns=1000
duration=30
while (($#)); do
  case "$1" in
    --url) url="$2"; shift 2 ;;
    --conns) conns="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if ! command -v slowhttptest >/dev/null 2>&1; then
  echo "== installing slowhttptest"
  apt-get update -qq && apt-get install -y -qq slowhttptest >/dev/null
fi

work=$(mktemp -d /tmp/ringway-slowhttp.XXXXXX)
demo_pid=""
cleanup() {
  [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -z "$url" ]; then
  [ -x target/release/ringway ] || cargo build --release
  ulimit -n "$(ulimit -Hn)" || true
  target/release/ringway demo --listen 127.0.0.1:8443 >"$work/demo.out" 2>"$work/demo.err" &
  demo_pid=$!
  for _ in $(seq 50); do grep -q "ringway demo" "$work/demo.out" 2>/dev/null && break; sleep 0.1; done
  url="https://localhost:8443/"
fi

probe() {
  curl -sk --max-time 5 -o /dev/null -w '%{http_code} in %{time_total}s' "$url" || echo "failed"
}

report() {
  local name="$1" csv="$2"
  # slowhttptest's CSV: Seconds,Closed,Pending,Connected,Service Available (the last column
  # is the connection count while its probe got an answer, 0 once it did not).
  local last closed pending connected available down
  last=$(tail -n 1 "$csv")
  IFS=, read -r _ closed pending connected available <<<"$last"
  down=$(awk -F, 'NR > 1 && $5 == 0 { n++ } END { print n + 0 }' "$csv")
  if [ "${available:-0}" -gt 0 ] && [ "$down" -eq 0 ]; then available="yes, throughout"; else available="no for ${down}s"; fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$connected" "$pending" "$closed" \
    "$available" "$(probe)"
}

echo "slowhttptest against $url: $conns connections, ${duration}s each"
echo
echo "| attack | connected at end | pending | closed | service available (slowhttptest) | well-behaved client after |"
echo "|---|--:|--:|--:|---|---|"
# -H slowloris (slow headers), -B slow body (r-u-dead-yet), -X slow read.
slowhttptest -H -c "$conns" -r 200 -i 10 -s 8192 -l "$duration" -u "$url" -g -o "$work/slowloris" >/dev/null 2>&1 || true
report "slowloris (slow headers)" "$work/slowloris.csv"
slowhttptest -B -c "$conns" -r 200 -i 10 -s 8192 -l "$duration" -u "$url" -g -o "$work/slowbody" >/dev/null 2>&1 || true
report "slow body" "$work/slowbody.csv"
slowhttptest -X -c "$conns" -r 200 -w 512 -y 1024 -n 5 -z 32 -k 3 -l "$duration" -u "${url%/}/" -g -o "$work/slowread" >/dev/null 2>&1 || true
report "slow read" "$work/slowread.csv"
echo
echo "ringway cuts slow heads at timeouts.request_head (408), slow bodies at timeouts.body (408),"
echo "and stalled readers at timeouts.body; lower them in the config to see connections closed sooner."
