#!/usr/bin/env bash
# The multi-host lab: learner, teacher server and two actors on four "hosts" (network
# namespaces on one bridge, scripts/lab/netlab, addresses 198.18.2.0/24 that exist only inside
# them), agreeing on the problem through one --config file. Asserts that the student learns,
# then measures four faults in the same run:
#   a) the learner's link cut for 5 s and restored: seconds until env steps flow again and
#      until every actor is alive again; then an actor's link cut likewise;
#   b) nftables dropping 30 % of the packets in and out of the learner's interface at random:
#      a fresh learner must still teach the student; env steps/s against the clean baseline;
#   c) tc tbf at 10 Mbit/s on the learner's link (traffic into it, i.e. the unrolls): env
#      steps/s and bytes/s against the baseline; the bytes must respect the limit.
# Budget: about 90 s on this 2-core machine; every wait is bounded (worst case ~4 min).
#   DLAB_PREFIX   prefix of the namespaces (default dlab)
#   DLAB_KEEP=1   keep the work directory (logs, metrics of each phase) after the run
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" -eq 0 ] || lab_fail "needs root to create network namespaces (run it with sudo)"
lab_need_packages iproute2 nftables
command -v python3 >/dev/null || lab_need_packages python3
[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY: swift build -c release, or set DISTILL_BINARY"

NETLAB="$LAB_ROOT/scripts/lab/netlab"
export DLAB_PREFIX="${DLAB_PREFIX:-dlab}"
work=$(mktemp -d /tmp/dlab-multihost.XXXXXX)
pids=()
actor_pids=()
learner_pid=""

cleanup() {
    local code=$?
    trap - EXIT INT TERM
    lab_kill_tree "${actor_pids[@]}" "$learner_pid" "${pids[@]}"
    "$NETLAB" down || true
    if [ $code -ne 0 ]; then lab_show_logs; fi
    if [ "${DLAB_KEEP:-0}" = 1 ]; then lab_say "kept $work"; else rm -rf "$work"; fi
    exit $code
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers

now() { date +%s.%N; }
# Fixed-point: epoch seconds need all their digits.
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
holds() { awk "BEGIN { exit !($*) }"; }

# status KEY...: the learner's status (asked from inside the learner's host, so a cut link
# does not hide it), one value a line; KEY "actor:ID:FIELD" reads an actor's entry.
status() {
    local json
    json=$(timeout 10 "$NETLAB" exec learner "$DISTILL_BINARY" control status \
        --learner "$control" --timeout-ms 3000 2>/dev/null) || return 1
    lab_status_fields "$json" "$@"
}

# sample: sets S_T (time), S_STEPS, S_UPDATES, S_ALIVE, S_RX (learner eth0 rx bytes),
# S_A1 (actor1's env steps, as it last reported them), S_A1_ALIVE.
sample() {
    local values
    values=$(status env_steps updates actors_alive actor:actor1:env_steps actor:actor1:alive) || return 1
    S_T=$(now)
    read -r S_RX _ < <("$NETLAB" bytes learner)
    { read -r S_STEPS; read -r S_UPDATES; read -r S_ALIVE; read -r S_A1; read -r S_A1_ALIVE; } <<<"$values"
}

# start_phase PHASE: a fresh learner (no checkpoint; out dir $work/PHASE) on the learner host,
# then fresh actors on the actor hosts: every phase learns from scratch, joins included.
start_phase() {
    local phase=$1 actor
    "$NETLAB" exec learner "$DISTILL_BINARY" learner --config "$work/run.json" \
        --bind-control "$control" --bind-unrolls "tcp://$learner_addr:5557" --bind-params "tcp://$learner_addr:5558" \
        --out "$work/$phase" >"$work/learner-$phase.log" 2>&1 &
    learner_pid=$!
    lab_wait_for 30 learner_ready || lab_fail "the learner ($phase) did not report the returns within 30 s"
    # Before any actor: the untrained student (uniform policy) and the reference teacher.
    { read -r initial_return; read -r teacher_return; } < <(status student_return teacher_return)
    for actor in actor1 actor2; do
        "$NETLAB" exec "$actor" "$DISTILL_BINARY" actor --config "$work/run.json" --id "$actor" \
            --learner "$control" --teacher-server "tcp://$teacher_addr:5556" >"$work/$actor-$phase.log" 2>&1 &
        actor_pids+=($!)
    done
}

# The learner answers before it has evaluated the student and the reference teacher once.
learner_ready() {
    local values
    values=$(status student_return teacher_return) && ! grep -qx null <<<"$values"
}

# stop_phase: SIGTERM to the actors, then to the learner; each must stop cleanly (exit 0) within 15 s.
stop_phase() {
    local pid
    for pid in "${actor_pids[@]}" "$learner_pid"; do
        kill -TERM "$pid"
        lab_wait_for 15 bash -c "! kill -0 $pid" || lab_fail "process $pid did not stop within 15 s of SIGTERM"
        wait "$pid" || lab_fail "process $pid exited with $? after SIGTERM (expected a clean 0)"
    done
    actor_pids=()
    learner_pid=""
}

# wait_learned PHASE SECONDS: until the student's return is 95 % of the way from its initial
# return to the teacher's; sets LEARN_SECONDS (from the actors' launch, their joins included).
wait_learned() {
    local phase=$1 limit=$2 start ret
    start=$(now)
    while true; do
        ret=$(status student_return) || ret=null
        if [ "$ret" != null ] && holds "$ret >= $threshold"; then break; fi
        holds "$(now) - $start < $limit" ||
            lab_fail "$phase: the student did not learn within $limit s (return $ret, needs $threshold)"
        sleep 0.2
    done
    LEARN_SECONDS=$(calc "$(now) - $start")
    lab_say "$phase: the student learned in $LEARN_SECONDS s (return $ret; initial $initial_return, teacher $teacher_return)"
}

# window PHASE SECONDS: env steps/s and wire bytes/s into the learner over SECONDS;
# sets W_STEPS_PER_S, W_BYTES_PER_S, W_MIN_ALIVE.
window() {
    local phase=$1 seconds=$2 t0 steps0 rx0 end min_alive=99
    sample || lab_fail "$phase: no status"
    t0=$S_T steps0=$S_STEPS rx0=$S_RX
    end=$(calc "$t0 + $seconds")
    while holds "$(now) < $end"; do
        sleep 0.5
        sample || continue
        [ "$S_ALIVE" -lt "$min_alive" ] && min_alive=$S_ALIVE
    done
    W_STEPS_PER_S=$(calc "($S_STEPS - $steps0) / ($S_T - $t0)")
    W_BYTES_PER_S=$(calc "($S_RX - $rx0) / ($S_T - $t0)")
    W_MIN_ALIVE=$min_alive
    lab_say "$phase: $W_STEPS_PER_S env steps/s, $W_BYTES_PER_S bytes/s into the learner host (fewest actors alive: $min_alive)"
}

# bytes_per_step PHASE: mean unroll bytes per env step, from the phase's summary.json.
bytes_per_step() {
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["unroll_bytes_mean"] * s["unroll_messages"] / max(1, s["env_steps_this_run"]))
' "$work/$1/summary.json"
}

# ---- the lab

"$DISTILL_BINARY" cluster --write-config "$work/run.json" --env gridworld --seed 3 --teacher q-learning \
    --method n-distill+R >/dev/null
"$NETLAB" up learner teacher actor1 actor2 >"$work/hosts"
learner_addr=$("$NETLAB" addr learner)
teacher_addr=$("$NETLAB" addr teacher)
control="tcp://$learner_addr:5559"
lab_say "hosts: $(tr '\n' ';' <"$work/hosts")"

"$NETLAB" exec teacher "$DISTILL_BINARY" teacher --config "$work/run.json" --bind "tcp://$teacher_addr:5556" \
    >"$work/teacher.log" 2>&1 &
pids+=($!)

# ---- clean baseline
start_phase clean
threshold=$(calc "$initial_return + 0.95 * ($teacher_return - $initial_return)")
holds "$teacher_return - $initial_return > 1" ||
    lab_fail "the initial student ($initial_return) is already close to the teacher ($teacher_return): nothing to learn"
wait_learned clean 60
clean_learn=$LEARN_SECONDS
window clean 6
base_steps=$W_STEPS_PER_S base_bytes=$W_BYTES_PER_S
[ "$W_MIN_ALIVE" -eq 2 ] || lab_fail "clean: only $W_MIN_ALIVE actors alive on a clean network"

# ---- a) the learner's link cut for 5 s, then restored
sample
"$NETLAB" cut learner
sleep 2
sample
stalled_from=$S_STEPS
sleep 3
sample
stalled_to=$S_STEPS cut_alive=$S_ALIVE
"$NETLAB" restore learner
t_restore=$(now)
[ "$stalled_to" -eq "$stalled_from" ] ||
    lab_fail "learner cut: env steps still grew during the cut ($stalled_from -> $stalled_to): the cut did not cut"
# First a trickle (what TCP retransmits of the unrolls held in flight), then learning at full
# speed: 100,000 env steps beyond the stall (about 50 unrolls; under 0.1 s at the clean rate).
trickle_after="" resume_after="" alive_after=""
while [ -z "$resume_after" ] || [ -z "$alive_after" ]; do
    # TCP's backoff after a 5 s outage (next retry <= ~3.2 s) plus the actors' 3 s receipt
    # timeout: 15 s is a generous bound.
    holds "$(now) - $t_restore < 15" ||
        lab_fail "learner cut: 15 s after the restore: learning resumed ${resume_after:-no}, actors alive ${alive_after:-no}"
    sample || continue
    [ -z "$trickle_after" ] && [ "$S_STEPS" -gt "$stalled_to" ] && trickle_after=$(calc "$S_T - $t_restore")
    [ -z "$resume_after" ] && [ "$S_STEPS" -gt $((stalled_to + 100000)) ] && resume_after=$(calc "$S_T - $t_restore")
    [ -z "$alive_after" ] && [ "$S_ALIVE" -eq 2 ] && alive_after=$(calc "$S_T - $t_restore")
    sleep 0.1
done
lab_say "learner cut 5 s (actors alive at its end: $cut_alive): first env steps $trickle_after s after the restore, learning at full speed after $resume_after s, both actors alive after $alive_after s"
learner_cut_trickle=$trickle_after learner_cut_resume=$resume_after learner_cut_alive=$alive_after
learner_cut_dead=$cut_alive
updates_before=$S_UPDATES
sleep 1
sample
[ "$S_UPDATES" -gt "$updates_before" ] || lab_fail "learner cut: no update in the second after learning resumed"

# ---- a') an actor's link cut for 5 s, then restored
"$NETLAB" cut actor1
sleep 2
sample
others_from=$S_STEPS a1_from=$S_A1
sleep 3
sample
[ "$S_A1_ALIVE" = false ] || lab_fail "actor cut: the learner did not mark actor1 dead after 5 s of silence"
[ "$S_STEPS" -gt "$others_from" ] || lab_fail "actor cut: learning stopped while only actor1 was cut off"
[ "$S_A1" -eq "$a1_from" ] || lab_fail "actor cut: actor1's env steps grew while it was cut off"
"$NETLAB" restore actor1
t_restore=$(now)
while true; do
    holds "$(now) - $t_restore < 15" || lab_fail "actor cut: actor1 not back 15 s after the restore"
    if sample && [ "$S_A1_ALIVE" = true ] && [ "$S_A1" -gt "$a1_from" ]; then break; fi
    sleep 0.1
done
actor_cut_back=$(calc "$S_T - $t_restore")
lab_say "actor1 cut 5 s (marked dead; actor2 kept the learning going): actor1 alive with new env steps $actor_cut_back s after the restore"
stop_phase
clean_bytes_per_step=$(bytes_per_step clean)

# ---- b) 30 % random drops in and out of the learner's interface, a fresh learner
"$NETLAB" drop learner 30
start_phase drop30
wait_learned drop30 120
drop_learn=$LEARN_SECONDS
window drop30 8
drop_steps=$W_STEPS_PER_S drop_bytes=$W_BYTES_PER_S drop_min_alive=$W_MIN_ALIVE
# Why so slow: TCP's retransmission timer on actor1's unroll connection (rto in ms, backoff =
# consecutive timeouts, retrans = segments now unacknowledged-and-resent / in total).
tcp_state=$("$NETLAB" exec actor1 ss -tinH state established dst "$learner_addr:5557" 2>/dev/null | awk '
    /^[^ \t]/ { if (c) printf "%s] ", c; c = "[" }
    { for (i = 1; i <= NF; i++) if ($i ~ /^(rto|backoff|retrans|bytes_retrans):/) c = c (c == "[" ? "" : " ") $i }
    END { if (c) printf "%s]", c }' || true)
lab_say "drop30: actor1's unroll connection: ${tcp_state:-(no connection)}"
dropped=$("$NETLAB" exec learner nft list table inet netlab_drop | awk '/counter/ { n += $(NF-3) } END { print n + 0 }')
[ "$dropped" -gt 0 ] || lab_fail "drop30: nftables dropped no packet"
"$NETLAB" undrop learner
marked_dead=$(grep -c "missed its heartbeats" "$work/learner-drop30.log" || true)
lab_say "drop30: nftables dropped $dropped packets; the learner marked an actor dead $marked_dead times"
holds "$drop_steps < $base_steps" || lab_fail "drop30: 30 % drops did not slow anything ($drop_steps vs $base_steps steps/s)"
stop_phase

# ---- c) 10 Mbit/s token bucket on the learner's link (traffic into it: the unrolls)
"$NETLAB" limit learner 10mbit to
start_phase tbf10
wait_learned tbf10 60
tbf_learn=$LEARN_SECONDS
window tbf10 6
tbf_steps=$W_STEPS_PER_S tbf_bytes=$W_BYTES_PER_S
"$NETLAB" unlimit learner
stop_phase
tbf_bytes_per_step=$(bytes_per_step tbf10)
tbf_unroll_bytes=$(calc "$tbf_steps * $tbf_bytes_per_step")
# 10 Mbit/s = 1.25 MB/s of Ethernet frames; the 32 KB burst spread over the window, 10 % for timing.
holds "$tbf_bytes <= 1250000 * 1.1 + 32768 / 6" || lab_fail "tbf10: $tbf_bytes bytes/s into the learner exceed 10 Mbit/s"
holds "$tbf_unroll_bytes <= 1250000 * 1.1" || lab_fail "tbf10: $tbf_unroll_bytes unroll bytes/s exceed 10 Mbit/s"
holds "$tbf_bytes >= 1250000 * 0.5" || lab_fail "tbf10: only $tbf_bytes bytes/s: the limit, not the cluster, should be the bottleneck"
holds "$tbf_steps < 0.5 * $base_steps" || lab_fail "tbf10: $tbf_steps steps/s is not well below the baseline $base_steps"

# ---- the figures
cat <<EOF
multihost lab figures (gridworld seed 3, n-distill+R, q-learning teacher; 2 actors; learner, teacher, actors on 4 namespaces)
  student return: initial $(calc "$initial_return"), teacher $(calc "$teacher_return"); learned (95 % of the way; seconds from the actors' launch) in $clean_learn s clean, $drop_learn s under 30 % drops, $tbf_learn s under 10 Mbit/s
  learner link cut 5 s:  after the restore, first env steps in $learner_cut_trickle s, learning at full speed in $learner_cut_resume s, both actors alive in $learner_cut_alive s (alive at the end of the cut: $learner_cut_dead)
  actor1 link cut 5 s:   actor1 marked dead, back with new env steps $actor_cut_back s after the restore; actor2 kept learning going
  phase        env steps/s     wire bytes/s into learner   unroll bytes/s
  clean        $(printf '%12.0f' "$base_steps")    $(printf '%12.0f' "$base_bytes")                $(printf '%12.0f' "$(calc "$base_steps * $clean_bytes_per_step")")
  30 % drops   $(printf '%12.0f' "$drop_steps")    $(printf '%12.0f' "$drop_bytes")                $(printf '%12.0f' "$(calc "$drop_steps * $clean_bytes_per_step")")   ($(calc "100 * $drop_steps / $base_steps") % of clean; fewest actors alive $drop_min_alive; marked dead $marked_dead times; actor1 TCP ${tcp_state:-?})
  10 Mbit tbf  $(printf '%12.0f' "$tbf_steps")    $(printf '%12.0f' "$tbf_bytes")                $(printf '%12.0f' "$tbf_unroll_bytes")   ($(calc "100 * $tbf_steps / $base_steps") % of clean; $(calc "$tbf_bytes * 8 / 1e6") Mbit/s on the wire)
EOF
