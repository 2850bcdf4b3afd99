#!/usr/bin/env bash
# Opt-in: a screenshot of a running admin status page with headless Chromium.
#
#   scripts/status-screenshot.sh URL OUT.png [--size 1400,900] [--wait-ms 5000] [--token TOKEN]
#
# URL is the admin server's page (http://127.0.0.1:9900/), plain HTTP. The page is given
# --wait-ms of (virtual) time before the shot, so that its script has fetched /status twice or
# more and shows rates; Chromium goes through a throwaway forwarding proxy on loopback
# (python3) that spaces those fetches a second apart in real time and, with --token (or
# RINGWAY_ADMIN_TOKEN), sends `Authorization: Bearer TOKEN`. Installs the Debian package
# chromium when it is missing (as root); needs curl and python3.
# Everything stays on this machine; the Chromium profile is a temporary directory.
#
# To shoot the sample page the tests serve (a fake snapshot of a loaded server):
#   cargo test --lib admin::tests::serve_sample -- --ignored &
#   scripts/status-screenshot.sh http://127.0.0.1:9901/ docs/status-page-sample.png
set -euo pipefail

usage() { sed -n '2,16p' "$0"; }
url=""
out=""
size="1400,900"
wait_ms=5000
token="${RINGWAY_ADMIN_TOKEN:-}"
while (($#)); do
  case "$1" in
    --size) size="$2"; shift 2 ;;
    --wait-ms) wait_ms="$2"; shift 2 ;;
    --token) token="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *)
      if [ -z "$url" ]; then url="$1"
      elif [ -z "$out" ]; then out="$1"
      else echo "unexpected argument $1" >&2; exit 2
      fi
      shift ;;
  esac
done
if [ -z "$url" ] || [ -z "$out" ]; then usage >&2; exit 2; fi

chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chromium" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is not installed (apt-get install chromium, as root)" >&2
    exit 1
  fi
  echo "== installing chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  chromium=$(command -v chromium)
fi

# The page answers at all (and says why not).
status=$(curl -s -o /dev/null -w '%{http_code}' ${token:+-H "Authorization: Bearer $token"} "$url" || true)
if [ "$status" != 200 ]; then
  echo "$url answered ${status:-nothing}, not 200" >&2
  exit 1
fi

profile=$(mktemp -d /tmp/ringway-screenshot.XXXXXX)
proxy_pid=""
cleanup() {
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
  rm -rf "$profile"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# Chromium runs the page's timers in virtual time, so its fetches of /status would come
# milliseconds apart and the rates would be noise. A small forwarding proxy on loopback holds
# each /status answer for a second of real time (virtual time waits for pending fetches), and
# adds `Authorization: Bearer TOKEN` when there is a token (a browser cannot be told to).
port_file="$profile/proxy.port"
RINGWAY_ADMIN_TOKEN="$token" python3 - "$port_file" <<'PY' &
import http.server, os, sys, time, urllib.error, urllib.parse, urllib.request
token = os.environ.get("RINGWAY_ADMIN_TOKEN", "")
# Straight to the admin server, whatever proxy the environment names.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
class Forward(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        headers = {"Authorization": "Bearer " + token} if token else {}
        try:
            if urllib.parse.urlsplit(self.path).path.endswith("/status"):
                time.sleep(1.0)
            with opener.open(urllib.request.Request(self.path, headers=headers), timeout=10) as answer:
                status, headers, body = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        except Exception:
            # Chromium's own background requests, to hosts this machine does not reach.
            status, headers, body = 502, {}, b""
        self.send_response(status)
        for name in ("Content-Type", "Content-Security-Policy"):
            if headers.get(name):
                self.send_header(name, headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
PY
proxy_pid=$!
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
if [ ! -s "$port_file" ]; then echo "the forwarding proxy did not start" >&2; exit 1; fi
proxy_args=(--proxy-server="http://127.0.0.1:$(cat "$port_file")" --proxy-bypass-list="<-loopback>")

mkdir -p "$(dirname "$out")"
"$chromium" --headless --disable-gpu --no-sandbox --hide-scrollbars \
  --user-data-dir="$profile" --no-first-run --disable-extensions \
  --window-size="$size" --virtual-time-budget="$wait_ms" \
  "${proxy_args[@]}" --screenshot="$out" "$url" 2>"$profile/chromium.err" || {
  cat "$profile/chromium.err" >&2
  exit 1
}
if [ ! -s "$out" ]; then
  cat "$profile/chromium.err" >&2
  echo "no screenshot written to $out" >&2
  exit 1
fi
echo "$out: $(stat -c %s "$out") bytes, $size"
