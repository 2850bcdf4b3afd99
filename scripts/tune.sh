#!/usr/bin/env bash
# tune.sh: compare, apply and revert ringway's sysctl profiles (tuning/*.conf).
#
#   scripts/tune.sh show PROFILE     current value vs the profile's, differences first (any user)
#   scripts/tune.sh apply PROFILE    show, save the current values of the keys that change,
#                                    then set the profile's values with sysctl -w (root)
#   scripts/tune.sh revert           restore exactly the saved values, remove the state (root)
#   scripts/tune.sh list             the profiles available
#
# PROFILE is a name from tuning/ (throughput, many-connections, low-latency) or a path to a
# file in sysctl.conf format. Keys this kernel does not have are skipped with a note.
#
# The saved values live in $RINGWAY_TUNE_STATE (default /var/lib/ringway-tune/saved.conf), in
# sysctl.conf format. Applying a second profile on top of the first keeps the values saved
# first, so one revert always returns to the values from before the first apply. Changes made
# here last until reboot; copy a profile to /etc/sysctl.d/ to make it permanent.
set -euo pipefail

PROG=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TUNING_DIR=${RINGWAY_TUNING_DIR:-$SCRIPT_DIR/../tuning}
TUNING_DIR=$(cd "$TUNING_DIR" 2>/dev/null && pwd || printf '%s' "$TUNING_DIR")
STATE=${RINGWAY_TUNE_STATE:-/var/lib/ringway-tune/saved.conf}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage() {
    cat <<EOF
usage: $PROG show PROFILE | apply PROFILE | revert | list

  show PROFILE    each key's current value next to the profile's, differences first
  apply PROFILE   save the current values of the keys that differ, then set them (root)
  revert          restore the values saved by apply and remove the state file (root)
  list            the profiles in $TUNING_DIR

PROFILE: a name (throughput, many-connections, low-latency) or a sysctl.conf-format file.
State file: $STATE (set RINGWAY_TUNE_STATE to change it).
EOF
}

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        die "'$1' changes kernel settings and needs root: run 'sudo $0 $*' ('show' works as any user)"
    fi
    command -v sysctl >/dev/null || die "sysctl not found (install procps)"
}

# Collapses runs of blanks (sysctl prints multi-value keys with tabs) into single spaces.
normalize() {
    local v=$1
    v=${v//$'\t'/ }
    while [[ $v == *"  "* ]]; do v=${v//  / }; done
    v=${v# }
    v=${v% }
    printf '%s' "$v"
}

proc_path() {
    printf '/proc/sys/%s' "${1//.//}"
}

# Reads a key's current value into REPLY; returns 1 if this kernel lacks the key, 2 if it
# cannot be read.
read_key() {
    local path
    path=$(proc_path "$1")
    [[ -e $path ]] || return 1
    local raw
    raw=$(cat "$path" 2>/dev/null) || return 2
    REPLY=$(normalize "$raw")
}

# True when the key's file has no write permission bit (a status value such as fs.file-nr).
read_only() {
    local mode
    mode=$(stat -L -c %a "$(proc_path "$1")" 2>/dev/null) || return 1
    (((8#$mode & 8#222) == 0))
}

# Sets a key; prints sysctl's complaint and fails when it refused (procps sysctl may print an
# error yet exit 0, so its output counts too).
set_key() {
    local err
    err=$(sysctl -q -w "$1=$2" 2>&1) && [[ -z $err ]] && return 0
    printf '%s' "${err:-sysctl -w failed}"
    return 1
}

# Parses a sysctl.conf-format file into the arrays KEYS (in order) and VALUES (by key).
# Comments (# or ;) and blank lines are skipped; a leading '-' (sysctl.d "ignore errors") is
# dropped.
declare -a KEYS
declare -A VALUES
parse_conf() {
    local file=$1 line key value n=0
    KEYS=()
    VALUES=()
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=${line%$'\r'}
        [[ $line =~ ^[[:space:]]*([#\;].*)?$ ]] && continue
        [[ $line == *=* ]] || die "$file:$n: expected 'key = value': $line"
        key=$(normalize "${line%%=*}")
        key=${key#-}
        value=$(normalize "${line#*=}")
        [[ -n $key ]] || die "$file:$n: empty key"
        if [[ -z ${VALUES[$key]+set} ]]; then KEYS+=("$key"); fi
        VALUES[$key]=$value
    done <"$file"
}

resolve_profile() {
    local p=$1
    if [[ -f $p ]]; then
        PROFILE_FILE=$p
    elif [[ -f $TUNING_DIR/$p.conf ]]; then
        PROFILE_FILE=$TUNING_DIR/$p.conf
    else
        die "no profile '$p' (try: $(list_names | tr '\n' ' '))"
    fi
    PROFILE_NAME=$(basename "$PROFILE_FILE" .conf)
}

list_names() {
    local f
    for f in "$TUNING_DIR"/*.conf; do
        if [[ -e $f ]]; then basename "$f" .conf; fi
    done
}

# Compares the profile in KEYS/VALUES with this machine; fills DIFF (keys to change), SAME,
# MISSING and UNREADABLE, and CURRENT (by key).
declare -a DIFF SAME MISSING UNREADABLE
declare -A CURRENT
compare() {
    DIFF=() SAME=() MISSING=() UNREADABLE=()
    CURRENT=()
    local key rc
    for key in "${KEYS[@]}"; do
        rc=0
        read_key "$key" || rc=$?
        case $rc in
            0)
                CURRENT[$key]=$REPLY
                if [[ $REPLY == "${VALUES[$key]}" ]]; then
                    SAME+=("$key")
                elif read_only "$key"; then
                    UNREADABLE+=("$key")
                else
                    DIFF+=("$key")
                fi
                ;;
            1) MISSING+=("$key") ;;
            *) UNREADABLE+=("$key") ;;
        esac
    done
}

print_comparison() {
    local key w=8
    for key in "${KEYS[@]}"; do
        if ((${#key} > w)); then w=${#key}; fi
    done
    echo "profile $PROFILE_NAME ($PROFILE_FILE) on $(uname -n), Linux $(uname -r)"
    echo
    if ((${#DIFF[@]})); then
        echo "differ (${#DIFF[@]}):"
        printf '  %-*s  %-24s  %s\n' "$w" "key" "current" "profile"
        for key in "${DIFF[@]}"; do
            printf '* %-*s  %-24s  %s\n' "$w" "$key" "${CURRENT[$key]}" "${VALUES[$key]}"
        done
    else
        echo "differ: none, every key already has the profile's value"
    fi
    if ((${#SAME[@]})); then
        echo
        echo "already set (${#SAME[@]}):"
        for key in "${SAME[@]}"; do
            printf '  %-*s  %s\n' "$w" "$key" "${CURRENT[$key]}"
        done
    fi
    if ((${#MISSING[@]})); then
        echo
        echo "not on this kernel, skipped (${#MISSING[@]}):"
        for key in "${MISSING[@]}"; do
            printf '  %-*s  (no %s; module not loaded, older kernel, or not in this network namespace)\n' \
                "$w" "$key" "$(proc_path "$key")"
        done
    fi
    if ((${#UNREADABLE[@]})); then
        echo
        echo "unreadable or read-only, skipped (${#UNREADABLE[@]}):"
        for key in "${UNREADABLE[@]}"; do
            printf '  %-*s  (%s is not a setting that can be read and written)\n' \
                "$w" "$key" "$(proc_path "$key")"
        done
    fi
}

cmd_show() {
    resolve_profile "$1"
    parse_conf "$PROFILE_FILE"
    compare
    print_comparison
    if [[ -f $STATE ]]; then
        echo
        echo "note: values saved by an earlier apply are in $STATE ('$PROG revert' restores them)"
    fi
}

# Writes the saved values (SAVED/SAVED_KEYS) to the state file atomically.
declare -a SAVED_KEYS
declare -A SAVED
write_state() {
    local header=$1 key tmp
    if ((${#SAVED_KEYS[@]} == 0)); then
        rm -f -- "$STATE"
        return
    fi
    mkdir -p -- "$(dirname -- "$STATE")"
    tmp=$(mktemp "$STATE.XXXXXX")
    {
        echo "# Saved by ringway scripts/tune.sh: the values these keys had before $header."
        echo "# Restore them with 'scripts/tune.sh revert' (or 'sysctl -p $STATE')."
        for key in "${SAVED_KEYS[@]}"; do
            echo "$key = ${SAVED[$key]}"
        done
    } >"$tmp"
    chmod 644 -- "$tmp"
    mv -f -- "$tmp" "$STATE"
}

# Loads the state file into SAVED/SAVED_KEYS (empty when there is none).
load_state() {
    SAVED_KEYS=()
    SAVED=()
    STATE_HEADER=""
    [[ -f $STATE ]] || return 0
    parse_conf "$STATE"
    local key
    for key in "${KEYS[@]}"; do
        SAVED_KEYS+=("$key")
        SAVED[$key]=${VALUES[$key]}
    done
    STATE_HEADER=$(sed -n '1s/^# Saved by ringway scripts\/tune.sh: the values these keys had before \(.*\)\.$/\1/p' "$STATE")
}

cmd_apply() {
    require_root apply "$1"
    resolve_profile "$1"
    load_state
    local header=${STATE_HEADER:+$STATE_HEADER, then }
    header="${header}applying $PROFILE_NAME on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    parse_conf "$PROFILE_FILE"
    compare
    print_comparison
    echo
    if ((${#DIFF[@]} == 0)); then
        echo "nothing to change"
        return 0
    fi

    # Save first: whatever happens next, revert can undo it. A key saved by an earlier apply
    # keeps its first saved value.
    local key
    local -a added=()
    for key in "${DIFF[@]}"; do
        if [[ -z ${SAVED[$key]+set} ]]; then
            SAVED_KEYS+=("$key")
            SAVED[$key]=${CURRENT[$key]}
            added+=("$key")
        fi
    done
    write_state "$header"
    echo "saved the current values of ${#added[@]} key(s) to $STATE"

    local failed=0 now err
    for key in "${DIFF[@]}"; do
        if err=$(set_key "$key" "${VALUES[$key]}"); then
            read_key "$key" || REPLY="?"
            if [[ $REPLY == "${VALUES[$key]}" ]]; then
                echo "set  $key = $REPLY"
            else
                echo "set  $key = ${VALUES[$key]} (warning: the kernel stored '$REPLY')"
            fi
        else
            failed=$((failed + 1))
            echo "FAIL $key = ${VALUES[$key]}: $err" >&2
            # Unchanged: forget it unless an earlier apply saved it.
            if [[ " ${added[*]} " == *" $key "* ]]; then
                unset "SAVED[$key]"
                local -a others=()
                for now in "${SAVED_KEYS[@]}"; do
                    if [[ $now != "$key" ]]; then others+=("$now"); fi
                done
                SAVED_KEYS=("${others[@]}")
            fi
        fi
    done
    write_state "$header"
    echo
    if ((failed)); then
        echo "$PROG: $failed key(s) could not be set (read-only in a container, or a value this kernel refuses)" >&2
        echo "'$PROG revert' restores what was changed" >&2
        return 1
    fi
    echo "applied $PROFILE_NAME: ${#DIFF[@]} key(s) changed until reboot; '$PROG revert' restores them"
}

cmd_revert() {
    require_root revert
    if [[ ! -f $STATE ]]; then
        echo "nothing to revert: no saved values at $STATE"
        return 0
    fi
    load_state
    if [[ -n $STATE_HEADER ]]; then
        echo "restoring the values from before $STATE_HEADER"
    fi
    local key failed=0 before err
    local -a left=()
    for key in "${SAVED_KEYS[@]}"; do
        if ! read_key "$key"; then
            echo "skip $key: not on this kernel any more" >&2
            continue
        fi
        before=$REPLY
        if err=$(set_key "$key" "${SAVED[$key]}"); then
            read_key "$key" || REPLY="?"
            echo "restored $key = $REPLY (was $before)"
        else
            failed=$((failed + 1))
            left+=("$key")
            echo "FAIL $key = ${SAVED[$key]}: $err" >&2
        fi
    done
    if ((failed)); then
        local -A keep=()
        for key in "${left[@]}"; do keep[$key]=${SAVED[$key]}; done
        SAVED_KEYS=("${left[@]}")
        SAVED=()
        for key in "${left[@]}"; do SAVED[$key]=${keep[$key]}; done
        write_state "${STATE_HEADER:-an apply}"
        die "$failed key(s) could not be restored; they stay in $STATE"
    fi
    rm -f -- "$STATE"
    if [[ -z ${RINGWAY_TUNE_STATE:-} ]]; then
        rmdir -- "$(dirname -- "$STATE")" 2>/dev/null || true
    fi
    echo "reverted ${#SAVED_KEYS[@]} key(s); removed $STATE"
}

cmd_list() {
    local name file summary
    for name in $(list_names); do
        file=$TUNING_DIR/$name.conf
        summary=$(sed -n '1s/^# [^:]*: *//p' "$file")
        printf '%-18s %s\n' "$name" "$summary"
    done
}

main() {
    local cmd=${1:-}
    case $cmd in
        show | apply)
            [[ $# -eq 2 ]] || {
                usage >&2
                exit 2
            }
            "cmd_$cmd" "$2"
            ;;
        revert)
            [[ $# -eq 1 ]] || {
                usage >&2
                exit 2
            }
            cmd_revert
            ;;
        list) cmd_list ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
