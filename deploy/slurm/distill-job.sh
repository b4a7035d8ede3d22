# shellcheck shell=bash
# Sourced by distill-hetjob.sbatch and distill-multiprog.sbatch (inside the batch script, on the
# job's first node): checks the settings, writes the run configuration, clears the rendezvous
# directory and exports what every task needs. Settings come from the environment
# (`sbatch --export=ALL,DISTILL_STEPS=...` or variables exported before sbatch):
#
#   DISTILL_BINARY         distill binary on a shared path     (default: SUBMIT_DIR/.build/release/distill)
#   DISTILL_OUT            the learner's --out, shared         (default: SUBMIT_DIR/runs/slurm-JOBID)
#   DISTILL_CONFIG         run configuration JSON              (default: written to OUT/config.json
#                                                               from DISTILL_PROBLEM)
#   DISTILL_PROBLEM        flags of `distill cluster --write-config` when DISTILL_CONFIG is unset
#                          (default: --env gridworld --seed 1 --teacher q-learning --method n-distill+R)
#   DISTILL_STEPS          environment steps the learner learns from   (default: 3000000)
#   DISTILL_GIVE_UP_AFTER  seconds a role waits for lost peers before exiting 75 (default: 120)
#   DISTILL_PORT_BASE      learner control BASE, unrolls BASE+1, parameters BASE+2, teacher BASE+3
#                          (default: 20000 + 4 * (JOBID % 10000), so jobs sharing a node differ)
#   DISTILL_SLURM_DIR      this directory on a shared path     (default: SUBMIT_DIR/deploy/slurm)
# Any other DISTILL_* variable is a flag of the role that has it (DISTILL_ACTOR_TIMEOUT_MS is the
# learner's --actor-timeout-ms, DISTILL_MAX_IN_FLIGHT the actors' --max-in-flight, ...).

distill_job_fail() {
    echo "distill-job: $*" >&2
    exit 2
}

: "${SLURM_JOB_ID:?distill-job.sh runs inside a Slurm batch job (submit the .sbatch script with sbatch)}"
submit_dir="${SLURM_SUBMIT_DIR:-$PWD}"
export DISTILL_SLURM_DIR="${DISTILL_SLURM_DIR:-$submit_dir/deploy/slurm}"
export DISTILL_BINARY="${DISTILL_BINARY:-$submit_dir/.build/release/distill}"
export DISTILL_OUT="${DISTILL_OUT:-$submit_dir/runs/slurm-$SLURM_JOB_ID}"
export DISTILL_STEPS="${DISTILL_STEPS:-3000000}"
export DISTILL_GIVE_UP_AFTER="${DISTILL_GIVE_UP_AFTER:-120}"
export DISTILL_PORT_BASE="${DISTILL_PORT_BASE:-$((20000 + 4 * (SLURM_JOB_ID % 10000)))}"

[ -x "$DISTILL_SLURM_DIR/distill-role.sh" ] ||
    distill_job_fail "no distill-role.sh in $DISTILL_SLURM_DIR: submit from the repository root, or set DISTILL_SLURM_DIR to deploy/slurm on a path every node sees"
[ -x "$DISTILL_BINARY" ] ||
    distill_job_fail "no distill binary at $DISTILL_BINARY: build it (swift build -c release) on a shared path, or set DISTILL_BINARY"
[[ "$DISTILL_STEPS" =~ ^[1-9][0-9]*$ ]] || distill_job_fail "DISTILL_STEPS must be a positive integer, got '$DISTILL_STEPS'"
[[ "$DISTILL_GIVE_UP_AFTER" =~ ^[0-9]+([.][0-9]+)?$ ]] ||
    distill_job_fail "DISTILL_GIVE_UP_AFTER must be seconds (a number >= 0), got '$DISTILL_GIVE_UP_AFTER'"
if ! [[ "$DISTILL_PORT_BASE" =~ ^[0-9]+$ ]] || [ "$DISTILL_PORT_BASE" -lt 1024 ] || [ "$DISTILL_PORT_BASE" -gt 65532 ]; then
    distill_job_fail "DISTILL_PORT_BASE must be a port from 1024 to 65532, got '$DISTILL_PORT_BASE'"
fi

mkdir -p "$DISTILL_OUT" || distill_job_fail "cannot create DISTILL_OUT=$DISTILL_OUT"
DISTILL_OUT="$(cd "$DISTILL_OUT" && pwd)"
if [ -z "${DISTILL_CONFIG:-}" ]; then
    # shellcheck disable=SC2086 # DISTILL_PROBLEM is a list of flags
    env -u DISTILL_OUT -u DISTILL_STEPS "$DISTILL_BINARY" cluster --write-config "$DISTILL_OUT/config.json" \
        ${DISTILL_PROBLEM:---env gridworld --seed 1 --teacher q-learning --method n-distill+R} >/dev/null ||
        distill_job_fail "cannot write the run configuration from DISTILL_PROBLEM='${DISTILL_PROBLEM:-}'"
    export DISTILL_CONFIG="$DISTILL_OUT/config.json"
fi
[ -r "$DISTILL_CONFIG" ] || distill_job_fail "cannot read DISTILL_CONFIG=$DISTILL_CONFIG"

# Where the roles tell each other their endpoints (and the learner that it finished).
export DISTILL_RENDEZVOUS="$DISTILL_OUT/rendezvous"
rm -rf "$DISTILL_RENDEZVOUS"
mkdir -p "$DISTILL_RENDEZVOUS"

echo "distill-job: job $SLURM_JOB_ID on $SLURM_JOB_NODELIST; out $DISTILL_OUT; steps $DISTILL_STEPS;" \
    "give up after $DISTILL_GIVE_UP_AFTER s; ports $DISTILL_PORT_BASE-$((DISTILL_PORT_BASE + 3)); binary $DISTILL_BINARY"
