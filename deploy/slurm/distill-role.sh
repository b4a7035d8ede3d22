#!/usr/bin/env bash
# One distill role as a task of a Slurm job step (started by srun from distill-hetjob.sbatch or
# distill-multiprog.sbatch, with the environment distill-job.sh exported):
#   distill-role.sh learner|teacher|actor
# The roles find each other through files in DISTILL_RENDEZVOUS (on the shared filesystem):
# the learner and the teacher server each write their endpoint there, tcp://ADDRESS:PORT with
# ADDRESS the Slurm NodeAddr of the node they run on; actors wait for both (bounded). When the
# learner has reached its step limit (or `distill control stop`) it writes `finished`: the teacher server then stops
# cleanly, and an actor that gave up after it counts as done. Each task records its exit status
# in DISTILL_RENDEZVOUS/exit.ROLE.TASK (output of a node cut off the network never reaches srun). Every role runs with
# --give-up-after DISTILL_GIVE_UP_AFTER, so a lost peer ends the step (srun --kill-on-bad-exit).
set -uo pipefail

role="${1:-}"
say() { echo "distill-role[$role ${SLURMD_NODENAME:-?} task ${SLURM_PROCID:-?}]: $*" >&2; }
fail() {
    say "$*"
    exit 2
}
for variable in DISTILL_BINARY DISTILL_OUT DISTILL_CONFIG DISTILL_PORT_BASE DISTILL_RENDEZVOUS; do
    [ -n "${!variable:-}" ] || fail "$variable is not set: start roles through distill-hetjob.sbatch or distill-multiprog.sbatch"
done
rendezvous="$DISTILL_RENDEZVOUS"
control_port=$DISTILL_PORT_BASE
teacher_port=$((DISTILL_PORT_BASE + 3))

# The address other nodes reach this node at: Slurm's NodeAddr (the name itself when unset).
node_address() {
    local node="$1" address
    address=$(scontrol show node -o "$node" 2>/dev/null | tr ' ' '\n' | sed -n 's/^NodeAddr=//p')
    [ -n "$address" ] || address=$(getent hosts "$node" | awk '{print $1; exit}')
    echo "${address:-$node}"
}

finish() { # finish STATUS: records how this task ended (for post-mortems), then exits with it
    echo "$1 $(date +%Y-%m-%dT%H:%M:%S) ${SLURMD_NODENAME:-?}" >"$rendezvous/exit.$role.${SLURM_PROCID:-0}" 2>/dev/null
    exit "$1"
}

publish() { # publish NAME ENDPOINT: atomically, so a reader never sees half a line
    echo "$2" >"$rendezvous/.$1.$$"
    mv "$rendezvous/.$1.$$" "$rendezvous/$1"
    say "published $1 endpoint $2"
}

await() { # await NAME: the endpoint NAME published, waiting at most the give-up time (or 300 s)
    local limit=${DISTILL_GIVE_UP_AFTER%.*} waited=0
    [ "${limit:-0}" -gt 0 ] || limit=300
    until [ -s "$rendezvous/$1" ]; do
        [ "$waited" -lt $((limit * 5)) ] || {
            say "no $1 endpoint in $rendezvous after $limit s: did the $1 task start? giving up"
            return 75
        }
        sleep 0.2
        waited=$((waited + 1))
    done
    cat "$rendezvous/$1"
}

# Runs distill in the background so signals reach it and this script can watch the rendezvous.
child=""
signalled=0
# shellcheck disable=SC2317 # called by the trap
forward() {
    signalled=1
    [ -z "$child" ] || kill -TERM "$child" 2>/dev/null
}
trap forward TERM INT
run_distill() {
    "$DISTILL_BINARY" "$@" &
    child=$!
}
wait_child() { # waits for the child even when a signal interrupted `wait`
    local status
    while true; do
        wait "$child"
        status=$?
        kill -0 "$child" 2>/dev/null || return "$status"
    done
}

stop_when_finished() { # stop_when_finished GRACE: SIGTERM the child GRACE s after the learner finished
    local grace_ticks=$(($1 * 2))
    while kill -0 "$child" 2>/dev/null; do
        if [ -e "$rendezvous/finished" ]; then
            if [ "$grace_ticks" -le 0 ]; then
                say "the learner finished: stopping the $role"
                kill -TERM "$child" 2>/dev/null
                return
            fi
            grace_ticks=$((grace_ticks - 1))
        fi
        sleep 0.5
    done
}

address=$(node_address "${SLURMD_NODENAME:-$(hostname -s)}")
case "$role" in
learner)
    publish learner "tcp://$address:$control_port"
    run_distill learner --id learner --out "$DISTILL_OUT" --checkpoint-dir "$DISTILL_OUT/checkpoints" --resume \
        --bind-control "tcp://*:$control_port" --bind-unrolls "tcp://*:$((control_port + 1))" \
        --bind-params "tcp://*:$((control_port + 2))"
    wait_child
    status=$?
    # Exit 0 after a signal is a clean stop of a cancelled step, not the end of the run.
    if [ "$status" -eq 0 ] && [ "$signalled" -eq 0 ]; then touch "$rendezvous/finished"; fi
    say "learner exited with status $status"
    finish "$status"
    ;;
teacher)
    publish teacher "tcp://$address:$teacher_port"
    run_distill teacher --id "teacher-${SLURMD_NODENAME:-0}" --bind "tcp://*:$teacher_port"
    stop_when_finished 0
    wait_child
    status=$?
    say "teacher server exited with status $status"
    finish "$status"
    ;;
actor)
    learner=$(await learner) || finish 75
    teacher=$(await teacher) || finish 75
    run_distill actor --id "actor-${SLURM_PROCID:-0}-${SLURMD_NODENAME:-node}" --learner "$learner" --teacher-server "$teacher"
    # The learner tells its live actors to stop; one it had given up for dead is stopped here.
    stop_when_finished 5
    wait_child
    status=$?
    if [ "$status" -eq 75 ] && [ -e "$rendezvous/finished" ]; then
        say "gave up after the learner finished: nothing was lost"
        status=0
    fi
    say "actor exited with status $status"
    finish "$status"
    ;;
*)
    fail "usage: distill-role.sh learner|teacher|actor (got '$role')"
    ;;
esac
