# Shared helpers of the lab tests (source it: . "$(dirname "$0")/../lib.sh").
# Every test cleans up after itself: it kills only the PIDs it started, deletes only the
# namespaces, links and files it created, and never sends a packet outside 127.0.0.0/8 or
# the namespaces it made.
set -euo pipefail

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DISTILL_BINARY="${DISTILL_BINARY:-$LAB_ROOT/.build/release/distill}"
export DISTILL_BINARY

lab_say() { echo "lab[$(basename "$0")]: $*" >&2; }
lab_fail() { lab_say "FAIL: $*"; exit 1; }

# lab_need_packages PKG...: apt-get installs the Debian packages that are missing.
lab_need_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    lab_say "installing ${missing[*]}"
    # Wait for the dpkg lock rather than fail: other sessions on the machine may be installing too.
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
}

# lab_wait_for SECONDS COMMAND...: retries COMMAND every 0.2 s until it succeeds; fails after SECONDS.
lab_wait_for() {
    local deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# lab_kill_tree PID...: SIGTERM, then SIGKILL after 5 s, for each PID we started (and its children).
lab_kill_tree() {
    local pid child
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        for child in $(pgrep -P "$pid" 2>/dev/null || true); do lab_kill_tree "$child"; done
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# lab_free_port: an ephemeral TCP port that is free on 127.0.0.1 now.
# The EXIT trap of a test that keeps its files in "$work" and the processes it starts in "pids":
# kills those processes, shows the end of every log in "$work" when the test failed, removes "$work".
# lab_show_logs: the last 15 lines of every $work/*.log on stderr (for a failed test's cleanup).
lab_show_logs() {
    local log
    for log in "$work"/*.log; do
        [ -f "$log" ] || continue
        echo "---- $(basename "$log") (last 15 lines)" >&2
        tail -15 "$log" >&2
    done
}

lab_cleanup_work() {
    local code=$?
    lab_kill_tree "${pids[@]}"
    if [ $code -ne 0 ]; then lab_show_logs; fi
    rm -rf "$work"
    exit $code
}

lab_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# lab_status_fields JSON KEY...: values from a learner's status JSON (distill control status), one a
# line; KEY "actor:ID:FIELD" reads one actor's entry; booleans print as true/false, null as null.
# KEY and FIELD must be keys of docs/schemas/learner-status.schema.json (a typo or a key that is
# not part of the status fails here, naming it); an actor that is not listed prints null.
lab_status_fields() {
    python3 -c '
import json, sys
schema = json.load(open(sys.argv[1]))
documented = schema["properties"]
actor_fields = documented["actors"]["items"]["properties"]
status = json.loads(sys.argv[2])
for key in sys.argv[3:]:
    field = key.split(":")[2] if key.startswith("actor:") else key
    if field not in (actor_fields if key.startswith("actor:") else documented):
        sys.exit(f"lab_status_fields: {field} is not a key of docs/schemas/learner-status.schema.json")
    if key.startswith("actor:"):
        _, ident, field = key.split(":")
        value = next((a[field] for a in status["actors"] if a["id"] == ident), None)
    else:
        value = status[key]
    print("null" if value is None else (str(value).lower() if isinstance(value, bool) else value))
' "$LAB_ROOT/docs/schemas/learner-status.schema.json" "$@"
}

# lab_venv DIR REQUIREMENT...: a Python venv at DIR holding exactly REQUIREMENTS (pip specs),
# created (installing python3-venv if needed) and reinstalled only when the list changes.
lab_venv() {
    local venv=$1
    shift
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" 2>/dev/null || {
            lab_need_packages python3-venv
            rm -rf "$venv"
            /usr/bin/python3 -m venv "$venv"
        }
    fi
    if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$(printf '%s\n' "$@")" ]; then
        lab_say "installing $* into $venv"
        timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
            || lab_fail "pip could not install $*"
        printf '%s\n' "$@" >"$venv/.requirements"
    fi
}
