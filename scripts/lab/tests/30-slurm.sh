#!/usr/bin/env bash
# Lab test: the Slurm job scripts of deploy/slurm on a real (throwaway) Slurm cluster.
# scripts/lab/slurm-up starts munged, slurmctld and 3 slurmd nodes, each in its own network
# namespace on a bridge; this test then
#   1. submits deploy/slurm/distill-hetjob.sbatch (learner, teacher server, 2 actors on three
#      different nodes) and deploy/slurm/distill-multiprog.sbatch (one allocation, srun
#      --multi-prog), waits (bounded) for each to end, and asserts: every component COMPLETED,
#      the roles ran on different nodes, and the student learned (summary.json: student return
#      >= 90 % of the teacher's, 20x20 gridworld seed 1, q-learning teacher, n-distill+R);
#   2. the failure case: submits the heterogeneous job with an endless step budget, waits until
#      learning is under way, cuts the actors' node off the bridge (its veth down in the switch
#      namespace) and asserts that the job ends by itself within 90 s in a terminal state
#      (NODE_FAIL expected: see below), that no role process is left on any node, and that once
#      the link is back Slurm's own step daemon on that node finishes too and the node returns.
# Everything it starts is stopped on every exit path (scripts/lab/slurm-down).
# Budget: 40-55 s on this 2-core machine, plus about 35 s to apt-get install slurm-wlm and munge
# on a fresh one.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

cd "$LAB_ROOT"
test_start=$(date +%s)
actor_help=$("$DISTILL_BINARY" actor --help 2>&1 || true)
[[ "$actor_help" == *--give-up-after* ]] ||
    lab_fail "$DISTILL_BINARY has no --give-up-after: rebuild it (swift build -c release) or set DISTILL_BINARY"

state=$(mktemp -d /tmp/distill-slurm-lab.XXXXXX)
work=$(mktemp -d /tmp/distill-slurm-work.XXXXXX)
cleanup() {
    local status=$?
    if [ $status -ne 0 ] && [ -d "$state/log" ]; then
        lab_say "slurmctld log (tail):"
        tail -15 "$state/log/slurmctld.log" >&2 || true
        for out in "$work"/*.out; do
            [ -f "$out" ] || continue
            lab_say "$(basename "$out") (tail):"
            tail -25 "$out" >&2
        done
    fi
    scripts/lab/slurm-down "$state" || true
    rm -rf "$work" "$state"
    exit $status
}
trap cleanup EXIT

scripts/lab/slurm-up --nodes 3 "$state" >/dev/null
slurm() { # slurm COMMAND ARGS...: a client command of the lab cluster
    local command=$1
    shift
    "$state/bin/$command" "$@"
}
lab_say "Slurm up after $(($(date +%s) - test_start)) s (state $state)"

export DISTILL_SLURM_DIR="$LAB_ROOT/deploy/slurm"
export DISTILL_PROBLEM="--env gridworld --seed 1 --teacher q-learning --method n-distill+R"
export DISTILL_GIVE_UP_AFTER=10

# states JOBID: the JobState of every component of the job, space separated.
states() { slurm scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 | tr '\n' ' '; }
terminal() { # terminal JOBID: true once no component is pending, running or completing
    local s
    s=$(states "$1")
    [ -n "$s" ] && ! echo "$s" | grep -qE 'PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED|REQUEUE|RESIZING'
}
since() { awk -v now="$(date +%s.%N)" -v then="$1" 'BEGIN { printf "%.1f", now - then }'; }
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }
slurm_times() { # the submit, start and end times Slurm recorded for component 0
    slurm scontrol show job "$1" | grep -oE '(SubmitTime|StartTime|EndTime)=[^ ]+' | head -3 | tr '\n' ' '
}

# run_job NAME SCRIPT: submits, waits, asserts COMPLETED and learning; prints a figure line.
run_job() {
    local name=$1 script=$2 out="$work/$1" id submitted seconds states_seen ratio returns nodes
    submitted=$(date +%s.%N)
    id=$(env DISTILL_OUT="$out" DISTILL_STEPS=3000000 "$state/bin/sbatch" --parsable --output="$work/$name-%j.out" "$script")
    id=${id%%;*}
    lab_wait_for 120 terminal "$id" || {
        slurm scancel "$id" || true
        lab_fail "$name job $id did not end within 120 s (states: $(states "$id"))"
    }
    seconds=$(since "$submitted")
    states_seen=$(states "$id")
    for s in $states_seen; do
        [ "$s" = COMPLETED ] || lab_fail "$name job $id ended $states_seen, expected COMPLETED in every component"
    done
    grep -q "COMPLETED" "$state/log/jobcomp.log" || lab_fail "jobcomp/filetxt recorded no completed job"
    [ -f "$out/summary.json" ] || lab_fail "$name: no summary.json in $out"
    [ "$(json_field "$out/summary.json" stopped_because)" = "step limit reached" ] ||
        lab_fail "$name: the learner stopped because '$(json_field "$out/summary.json" stopped_because)'"
    ratio=$(json_field "$out/summary.json" student_to_teacher_return)
    returns="student $(json_field "$out/summary.json" student_return), teacher $(json_field "$out/summary.json" teacher_return)"
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.9 else 1)" "$ratio" ||
        lab_fail "$name: the student did not learn: return ratio $ratio ($returns)"
    [ "$(json_field "$out/summary.json" actors_seen)" = 2 ] ||
        lab_fail "$name: the learner saw $(json_field "$out/summary.json" actors_seen) actors, expected 2"
    # Which node each role ran on (the role wrapper names it in every line).
    nodes=$(grep -ohE 'distill-role\[(learner|teacher|actor) dsl-n[0-9]+' "$work/$name-$id.out" | sort -u |
        sed 's/distill-role\[//' | tr '\n' ',' | sed 's/,$//')
    echo "$name job $id: COMPLETED ($states_seen) in $seconds s from sbatch to the end; Slurm: $(slurm_times "$id");" \
        "return ratio $ratio ($returns); roles on: $nodes"
}

het_line=$(run_job het deploy/slurm/distill-hetjob.sbatch)
lab_say "$het_line"
# The heterogeneous job's three components are on three different nodes.
for role in learner teacher actor; do
    echo "$het_line" | grep -qE "$role dsl-n[0-9]" || lab_fail "no $role line in the heterogeneous job's output"
done
[ "$(echo "$het_line" | grep -oE 'dsl-n[0-9]+' | sort -u | wc -l)" -eq 3 ] ||
    lab_fail "the heterogeneous job's roles were not on three different nodes: $het_line"

multi_line=$(run_job multiprog deploy/slurm/distill-multiprog.sbatch)
lab_say "$multi_line"
[ "$(echo "$multi_line" | grep -oE 'dsl-n[0-9]+' | sort -u | wc -l)" -ge 2 ] ||
    lab_fail "the multi-prog job's tasks were not spread over nodes: $multi_line"

# --- The failure case: one node's traffic cut while the job learns.
out="$work/cut"
id=$(env DISTILL_OUT="$out" DISTILL_STEPS=1000000000000 "$state/bin/sbatch" --parsable --output="$work/cut-%j.out" \
    deploy/slurm/distill-hetjob.sbatch)
id=${id%%;*}
learning() { # two metrics rows with both actors alive and steps learned
    [ -f "$out/metrics.csv" ] &&
        [ "$(awk -F, 'NR > 1 && $2 > 0 && $12 == 2' "$out/metrics.csv" | wc -l)" -ge 2 ]
}
lab_wait_for 60 learning || lab_fail "the job to be cut did not start learning within 60 s (states: $(states "$id"))"
# The actors' component is the third one (HetJobOffset=2); its node is the one cut.
actor_node=$(slurm scontrol show job -o "$id" | grep 'HetJobOffset=2 ' | grep -oE ' NodeList=dsl-n[0-9]+' | cut -d= -f2)
[ -n "$actor_node" ] || lab_fail "cannot tell which node runs the actors of job $id"
steps_before=$(tail -1 "$out/metrics.csv" | cut -d, -f2)
ip -n dsl-sw link set "$actor_node" down
cut_at=$(date +%s.%N)
lab_say "cut $actor_node (the actors' node) off the network after $steps_before env steps learned"
if ! lab_wait_for 90 terminal "$id"; then
    ip -n dsl-sw link set "$actor_node" up || true
    lab_fail "the job did not end within 90 s of the cut (states: $(states "$id"))"
fi
cut_seconds=$(since "$cut_at")
cut_states=$(states "$id")
# NODE_FAIL: the controller marks the silent node DOWN after SlurmdTimeout (10 s here) and ends
# the job. Before that, the roles have ended by themselves: the teacher server (no query from the
# cut actors) or the learner (no live actor) gives up after DISTILL_GIVE_UP_AFTER = 10 s with
# status 75, srun --kill-on-bad-exit cancels the step, and the cut actors give up on the learner.
echo "$cut_states" | grep -qE 'NODE_FAIL|FAILED|CANCELLED|TIMEOUT' ||
    lab_fail "the cut job ended $cut_states, expected NODE_FAIL, FAILED, CANCELLED or TIMEOUT"
lab_say "cut job $id ended $cut_states $cut_seconds s after the cut; Slurm: $(slurm_times "$id")"

# No role is left anywhere, the cut node included: distill processes and the role wrappers.
role_processes() {
    local ns pids
    for ns in dsl-n1 dsl-n2 dsl-n3; do
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ',' | sed 's/,$//')
        # Anything but Slurm's own daemons is a role, a role wrapper or the batch script.
        [ -z "$pids" ] || ps -o pid=,comm= -p "$pids" | grep -vE ' (slurmd|slurmstepd)$' | sed "s/^/$ns: /" || true
    done
}
no_role_processes() { [ -z "$(role_processes)" ]; }
lab_wait_for 20 no_role_processes || lab_fail "role processes left after the job ended: $(role_processes)"
[ -f "$out/summary.json" ] || lab_fail "the cut job's learner left no summary.json"
lab_say "no role process left on any node; the learner's summary says: $(json_field "$out/summary.json" stopped_because)"
# How each task ended (distill-role.sh records it on the shared filesystem, which in this lab the
# cut node still reaches): the cut actors must have given up on the learner by themselves.
exits=$(cd "$out/rendezvous" && for f in exit.*; do echo "${f#exit.}=$(cut -d' ' -f1 "$f")"; done | tr '\n' ' ')
lab_say "exit statuses (role.task=status): $exits"
actor_exits=("$out"/rendezvous/exit.actor.*)
if [ ${#actor_exits[@]} -ne 2 ] || [ ! -f "${actor_exits[0]}" ]; then
    lab_fail "expected the exit records of 2 actors, found: $exits"
fi
for record in "${actor_exits[@]}"; do
    [ "$(cut -d' ' -f1 "$record")" = 75 ] ||
        lab_fail "the cut actor ${record##*/exit.} ended with status $(cut -d' ' -f1 "$record"), expected 75 (gave up)"
done
lab_say "what the job's output says about the end (the cut node's tasks could not report):"
grep -E "gave up|exited with status|CANCELLED|NODE FAIL|stopping" "$work/cut-$id.out" | cut -c1-220 | sed 's/^/    /' >&2 || true

# The node comes back: its slurmstepd, still trying to report the step, finishes, and the node
# returns to service (ReturnToService=2).
ip -n dsl-sw link set "$actor_node" up
back_at=$(date +%s)
step_daemons() { for ns in dsl-n1 dsl-n2 dsl-n3; do ip netns pids "$ns"; done | xargs -r ps -o comm= -p | grep -c slurmstepd; }
node_clean() { [ "$(step_daemons)" -eq 0 ] && [ "$(slurm sinfo -h -n "$actor_node" -o %t)" = idle ]; }
lab_wait_for 150 node_clean ||
    lab_fail "after the link came back: $(step_daemons) slurmstepd left, $actor_node is $(slurm sinfo -h -n "$actor_node" -o %t)"
lab_say "link back: $actor_node idle and no slurmstepd left after $(($(date +%s) - back_at)) s"
lab_say "passed in $(($(date +%s) - test_start)) s"
