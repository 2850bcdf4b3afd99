#!/usr/bin/env bash
# Builds ringway's Debian package, verifies its systemd unit, and optionally installs it here.
# Run with --help for what it does and the options.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
UNIT="packaging/ringway.service"
INSTALL=0
REMOVE=0

usage() {
    cat <<EOF
Usage: scripts/package.sh [--install | --remove]

Builds target/debian/ringway_<version>-1_<arch>.deb (and its -dbgsym.ddeb) with cargo-deb:
the release binary as /usr/bin/ringway, $UNIT as /lib/systemd/system/ringway.service, and
ringway.example.toml as the conffile /etc/ringway/ringway.toml (metadata in Cargo.toml,
[package.metadata.deb]; maintainer scripts in packaging/debian/).

  * installs cargo-deb (cargo install cargo-deb --locked) when \`cargo deb\` is missing;
  * builds the package (a release build: several minutes);
  * when systemd-analyze exists, verifies a copy of the unit whose commands run the binary
    just built (the real unit names /usr/bin/ringway, which need not exist here).

Options (as root):
  --install   then install the package with dpkg -i and check the installed files:
              /usr/bin/ringway --version, the installed unit (systemd-analyze verify), the
              ringway user, \`ringway check\` on the example under /usr/share/doc/ringway
              (must pass) and on /etc/ringway/ringway.toml, run as the ringway user as the
              unit's ExecStartPre does (reports whether it passes: as shipped it names a
              certificate missing from /etc/ringway). Enables and starts nothing.
  --remove    purge the installed package (dpkg --purge ringway) and exit; the ringway user
              and certificates left in /etc/ringway stay.
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
    --install) INSTALL=1 ;;
    --remove) REMOVE=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "package.sh: unknown option $1 (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done
if [ "$INSTALL" = 1 ] && [ "$REMOVE" = 1 ]; then
    echo "package.sh: --install and --remove exclude each other" >&2
    exit 2
fi
if { [ "$INSTALL" = 1 ] || [ "$REMOVE" = 1 ]; } && [ "$(id -u)" -ne 0 ]; then
    echo "package.sh: --install and --remove need root" >&2
    exit 2
fi
cd "$ROOT"

if [ "$REMOVE" = 1 ]; then
    echo "== dpkg --purge ringway"
    dpkg --purge ringway
    exit 0
fi

# Verifies a unit file with systemd-analyze; fails on an error and on any warning it prints
# (an unknown key is only a warning to systemd, and would be silently ignored).
verify_unit() {
    local out
    if ! out=$(systemd-analyze verify --man=no "$1" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "package.sh: systemd-analyze verify $1 failed" >&2
        return 1
    fi
    if [ -n "$out" ]; then
        printf '%s\n' "$out" >&2
        echo "package.sh: systemd-analyze verify $1 warned" >&2
        return 1
    fi
    echo "systemd-analyze verify $1: ok"
}

echo "== cargo-deb"
if ! cargo deb --version >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
cargo deb --version

echo "== cargo deb --locked (release build)"
# cargo-deb prints the package's path last.
DEB=$(cargo deb --locked | grep '\.deb$' | tail -n 1)
if [ ! -f "$DEB" ]; then
    echo "package.sh: cargo deb did not name a package ($DEB)" >&2
    exit 1
fi
echo "$DEB"
BIN=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/ringway
"$BIN" --version
dpkg-deb --field "$DEB" Package Version Architecture Depends
echo "-- conffiles"
dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles
echo "-- contents"
dpkg-deb --contents "$DEB" | awk '{print $1, $2, $6}'

echo "== systemd-analyze verify $UNIT"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze --version | head -n 1
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    # The same unit, its commands pointed at the binary just built; the name stays
    # ringway.service, which verify reads the unit's type from.
    sed "s#/usr/bin/ringway#$BIN#g" "$UNIT" >"$TMP/ringway.service"
    verify_unit "$TMP/ringway.service"
else
    echo "systemd-analyze not found: the unit is not verified"
fi

[ "$INSTALL" = 1 ] || exit 0

echo "== dpkg -i $DEB"
dpkg -i "$DEB"
echo "== installed"
/usr/bin/ringway --version
id ringway
stat -c '%U:%G %a %n' /etc/ringway /etc/ringway/ringway.toml
if command -v systemd-analyze >/dev/null; then
    verify_unit /lib/systemd/system/ringway.service
fi
/usr/bin/ringway check /usr/share/doc/ringway/ringway.example.toml
# As the unit's ExecStartPre runs it: as the ringway user, which must be able to read
# /etc/ringway. As shipped, the config names example certificates that are not there.
if out=$(runuser -u ringway -- /usr/bin/ringway check /etc/ringway/ringway.toml 2>&1); then
    echo "$out"
else
    echo "$out"
    echo "(/etc/ringway/ringway.toml does not check yet: put your certificates in /etc/ringway," \
        "readable by group ringway, and edit the file; see README, \"Installed like a service\")"
fi
