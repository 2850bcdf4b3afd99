#!/usr/bin/env bash
# Opt-in: scan ringway's TLS with testssl.sh (protocols, ciphers per protocol, vulnerabilities
# including renegotiation).
#
#   scripts/testssl.sh [--target 127.0.0.1:8443] [--bin target/release/ringway] [--out DIR]
#
# Starts `ringway demo` on a free loopback port when --target is not given (building the
# release binary first if needed, or using --bin) and stops it afterwards, also on Ctrl-C.
# Runs `testssl.sh -p -E -U` against it, keeps the full report and CSV in --out (default
# target/testssl), and prints a summary: offered protocols, offered cipher suites, the
# vulnerability checks (renegotiation among them), and every finding rated LOW or worse or
# marked "NOT ok" / "VULNERABLE". Exits 1 when there is any.
# Everything stays on this machine. Needs the Debian package testssl.sh (installed when
# missing, as root); a scan takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

target=""
bin="target/release/ringway"
out="target/testssl"
while (($#)); do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

# Debian installs the script as `testssl`; upstream calls it `testssl.sh`.
testssl=$(command -v testssl.sh || command -v testssl || true)
if [ -z "$testssl" ]; then
  echo "== installing testssl.sh"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null
  testssl=$(command -v testssl.sh || command -v testssl)
fi

work=$(mktemp -d /tmp/ringway-testssl.XXXXXX)
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ]; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

if [ -z "$target" ]; then
  if [ "$bin" = target/release/ringway ] && [ ! -x "$bin" ]; then cargo build --release; fi
  # Port 0: the kernel picks a free port; the demo prints the one it got.
  "$bin" demo --listen 127.0.0.1:0 >"$work/demo.out" 2>"$work/demo.err" &
  demo_pid=$!
  for _ in $(seq 100); do
    target=$(sed -n 's|^ringway demo: https://\([0-9.]*:[0-9]*\)/.*|\1|p' "$work/demo.out")
    [ -n "$target" ] && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$target" ]; then
    echo "ringway demo did not start:" >&2
    cat "$work/demo.err" >&2
    exit 1
  fi
fi

mkdir -p "$out"
report="$out/report.txt"
csv="$out/report.csv"
rm -f "$report" "$csv"
echo "testssl ($("$testssl" --version 2>/dev/null | sed -n 's/.*testssl *\([0-9][0-9.]*\).*/\1/p' | head -n 1)) against $target: -p -E -U"
# --ip one: scan the address given, no DNS. --warnings batch: never wait for a keypress.
"$testssl" --quiet --color 0 --warnings batch --ip one -p -E -U \
  --csvfile "$csv" "$target" >"$report" 2>&1 || true
if [ ! -s "$csv" ]; then
  echo "testssl produced no results; its output:" >&2
  cat "$report" >&2
  exit 1
fi

# The CSV's columns: "id","fqdn/ip","port","severity","finding","cve","cwe".
field() { awk -F'","' -v id="$1" '$1 == "\"" id { print $5 }' "$csv"; }

echo
echo "Protocols:"
for id in SSLv2 SSLv3 TLS1 TLS1_1 TLS1_2 TLS1_3; do
  printf '  %-7s %s\n' "$id" "$(field "$id")"
done
echo
echo "Cipher suites offered (per protocol):"
awk -F'","' '$1 ~ /^"cipher-(tls|ssl)/ { print $5 }' "$csv" | sed 's/  */ /g; s/^ */  /' | sort -u
echo
echo "Vulnerabilities (-U):"
sed -n '/Testing vulnerabilities/,/Testing ciphers/p' "$report" | sed '1d;$d' | grep -v '^ *$' || true
echo
# Anything testssl rated worse than OK/INFO, and its own red flags in the text report.
flagged=$(awk -F'","' '$4 ~ /^(LOW|MEDIUM|HIGH|CRITICAL|WARN)$/ { print $1 "\": " $4 ": " $5 }' "$csv" | tr -d '"')
bad=$(grep -E 'NOT ok|VULNERABLE' "$report" || true)
if [ -n "$flagged$bad" ]; then
  echo "Flagged (severity LOW or worse, \"NOT ok\", \"VULNERABLE\"):"
  printf '%s\n' "$flagged" "$bad" | grep -v '^$' | sed 's/^/  /'
else
  echo "Nothing rated LOW or worse, no \"NOT ok\" or \"VULNERABLE\" finding."
fi
echo
echo "Full report: $report (CSV: $csv)"
[ -z "$flagged$bad" ]
