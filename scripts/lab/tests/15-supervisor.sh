#!/usr/bin/env bash
# deploy/local under a real supervisord (Debian's supervisor): brings up a teacher server, a
# learner and two actors as supervised programs, checks that the student learns, kills an actor
# with SIGKILL and checks that supervisor restarts it and the learner sees it come back (a new
# run of the same actor id, alive, playing), then stops everything and checks that no process,
# port or socket of the run is left. Budget: about 20 s; every wait is bounded (worst case ~3 min).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

lab_need_packages supervisor iproute2
command -v python3 >/dev/null || lab_need_packages python3
[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY: swift build -c release, or set DISTILL_BINARY"

RUN="$LAB_ROOT/deploy/local/run"
work=$(mktemp -d /tmp/dlab-supervisor.XXXXXX)
out="$work/run"
started_pids=()

supervisord_pid() { cat "$out/supervisor/supervisord.pid" 2>/dev/null; }

cleanup() {
    local code=$?
    trap - EXIT INT TERM
    local pid
    pid=$(supervisord_pid || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        timeout 90 "$RUN" stop --out "$out" >/dev/null 2>&1 || true
        started_pids+=("$pid")
    fi
    # Whatever we saw started and still lives (only PIDs of this run).
    lab_kill_tree "${started_pids[@]}"
    if [ $code -ne 0 ]; then
        for log in "$out"/logs/*.log "$out"/supervisor/supervisord.log; do
            [ -f "$log" ] || continue
            echo "---- last lines of $log" >&2
            tail -n 12 "$log" >&2
        done
    fi
    rm -rf "$work"
    exit $code
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
holds() { awk "BEGIN { exit !($*) }"; }
port_free() { [ -z "$(ss -Htln "sport = :$1")" ]; }

# status KEY...: from the learner's status JSON; "actor:ID:FIELD" reads one actor's entry.
status() {
    local json
    json=$(timeout 10 "$DISTILL_BINARY" control status --learner "tcp://127.0.0.1:$((base + 3))" --timeout-ms 3000 \
        2>/dev/null) || return 1
    lab_status_fields "$json" "$@"
}

# Four consecutive free ports (teacher, unrolls, parameters, control).
base=""
for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    if port_free "$candidate" && port_free $((candidate + 1)) && port_free $((candidate + 2)) &&
        port_free $((candidate + 3)); then
        base=$candidate
        break
    fi
done
[ -n "$base" ] || lab_fail "found no four consecutive free ports"

# ---- up
t_start=$(now)
"$RUN" start --out "$out" --actors 2 --port-base "$base" --env gridworld --seed 3 --teacher q-learning \
    --method n-distill+R >"$work/start.log" 2>&1 || {
    cat "$work/start.log" >&2
    lab_fail "deploy/local/run start failed"
}
started_pids+=("$(supervisord_pid)")
for pid in $("$RUN" ctl --out "$out" pid all); do started_pids+=("$pid"); done
up_seconds=$(calc "$(now) - $t_start")
programs=$("$RUN" ctl --out "$out" status || true)
[ "$(grep -c " RUNNING " <<<"$programs")" -eq 4 ] || lab_fail "expected teacher, learner and 2 actors RUNNING: $programs"
lab_say "up in $up_seconds s under supervisord $(supervisord_pid): $(awk '{print $1}' <<<"$programs" | tr '\n' ' ')"

# ---- the student learns: from the untrained student's return to the teacher's
# (the untrained return comes from a learner of the same config.json with no actor, on ports
# the system picks; the run's own learner has updated long before we could ask it)
"$DISTILL_BINARY" learner --config "$out/config.json" --bind-control 'tcp://127.0.0.1:*' \
    --bind-unrolls 'tcp://127.0.0.1:*' --bind-params 'tcp://127.0.0.1:*' >"$work/probe.log" 2>&1 &
probe_pid=$!
started_pids+=("$probe_pid")
lab_wait_for 20 grep -q "^endpoint control " "$work/probe.log" || lab_fail "the probe learner did not bind"
probe_control=$(awk '/^endpoint control / { print $3 }' "$work/probe.log")
probe_returns() {
    "$DISTILL_BINARY" control status --learner "$probe_control" --timeout-ms 2000 |
        python3 -c 'import json, sys; s = json.load(sys.stdin); assert s["version"] == 0
print(s["student_return"], s["teacher_return"]) if None not in (s["student_return"], s["teacher_return"]) else sys.exit(1)'
}
lab_wait_for 20 probe_returns || lab_fail "the probe learner did not report the returns"
read -r initial_return teacher_return < <(probe_returns)
kill -TERM "$probe_pid"
wait "$probe_pid" || lab_fail "the probe learner did not stop cleanly"
holds "$teacher_return - $initial_return > 1" || lab_fail "nothing to learn: student $initial_return, teacher $teacher_return"
threshold=$(calc "$initial_return + 0.95 * ($teacher_return - $initial_return)")
deadline=$(calc "$(now) + 60")
until ret=$(status student_return) && holds "$ret >= $threshold"; do
    holds "$(now) < $deadline" || lab_fail "the student did not learn within 60 s (return ${ret:-?}, needs $threshold)"
    sleep 0.2
done
lab_say "the student learned: return $ret (untrained $initial_return, teacher $teacher_return)"

# ---- kill actor-1 with SIGKILL: supervisor restarts it, the learner sees it come back
old_pid=$("$RUN" ctl --out "$out" pid actor:actor-1)
old_nonce=$(status actor:actor-1:run_nonce)
[[ "$old_pid" =~ ^[0-9]+$ ]] && [ "$old_nonce" != null ] || lab_fail "actor-1 is not running (pid '$old_pid', nonce $old_nonce)"
kill -KILL "$old_pid"
t_kill=$(now)
restart_after="" back_after=""
while [ -z "$restart_after" ] || [ -z "$back_after" ]; do
    holds "$(now) - $t_kill < 30" ||
        lab_fail "30 s after kill -9 of actor-1: restarted by supervisor ${restart_after:-no}, back at the learner ${back_after:-no}"
    if [ -z "$restart_after" ]; then
        new_pid=$("$RUN" ctl --out "$out" pid actor:actor-1 || true)
        if [[ "$new_pid" =~ ^[1-9][0-9]*$ ]] && [ "$new_pid" != "$old_pid" ]; then
            restart_after=$(calc "$(now) - $t_kill")
            started_pids+=("$new_pid")
        fi
    fi
    if [ -z "$back_after" ] && values=$(status actor:actor-1:run_nonce actor:actor-1:alive actor:actor-1:env_steps); then
        { read -r nonce; read -r alive; read -r steps; } <<<"$values"
        if [ "$nonce" != "$old_nonce" ] && [ "$nonce" != null ] && [ "$alive" = true ] && [ "$steps" -gt 0 ]; then
            back_after=$(calc "$(now) - $t_kill")
        fi
    fi
    sleep 0.1
done
grep -q "exited: actor-1 (terminated by SIGKILL; not expected)" "$out/supervisor/supervisord.log" ||
    lab_fail "supervisord did not log the SIGKILL of actor-1"
lab_say "actor-1 killed (pid $old_pid): supervisor restarted it after $restart_after s (pid $new_pid), the learner saw the new run alive and playing after $back_after s"
steps_before=$(status env_steps)
sleep 1
[ "$(status env_steps)" -gt "$steps_before" ] || lab_fail "learning stopped after the actor's restart"

# ---- stop: nothing may be left
for pid in $("$RUN" ctl --out "$out" pid all); do started_pids+=("$pid"); done
t_stop=$(now)
"$RUN" stop --out "$out" >"$work/stop.log" 2>&1 || {
    cat "$work/stop.log" >&2
    lab_fail "deploy/local/run stop failed"
}
stop_seconds=$(calc "$(now) - $t_stop")
for pid in "${started_pids[@]}"; do
    ! kill -0 "$pid" 2>/dev/null || lab_fail "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) is still running after stop"
done
for port in $base $((base + 1)) $((base + 2)) $((base + 3)); do
    port_free "$port" || lab_fail "port $port is still bound after stop"
done
[ ! -e "$out/supervisor/supervisor.sock" ] || lab_fail "supervisord left its socket behind"
for program in teacher learner actor-1 actor-2; do
    grep -q "stopped: $program (exit status 0)" "$out/supervisor/supervisord.log" ||
        lab_fail "$program did not stop with exit status 0 (supervisord.log)"
done
grep -q '"stopped_because" : "SIGTERM"' "$out/summary.json" || lab_fail "the learner wrote no summary on SIGTERM"
lab_say "stopped in $stop_seconds s: all $(printf '%s\n' "${started_pids[@]}" | sort -u | wc -l) processes of the run gone, ports $base-$((base + 3)) free, socket removed"

cat <<EOF
supervisor lab figures (gridworld seed 3, n-distill+R, 2 actors)
  up (4 programs RUNNING, learner answering): $up_seconds s; student return $ret (untrained $initial_return, teacher $teacher_return)
  actor-1 kill -9: restarted by supervisor after $restart_after s, back at the learner (new run, alive, playing) after $back_after s
  stop (actors, learner, teacher, supervisord): $stop_seconds s; nothing left
EOF
