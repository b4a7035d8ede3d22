#!/usr/bin/env bash
# The binary for other hosts (scripts/build-static) runs where Swift is not installed. In a mount
# namespace of its own (unshare --mount, needs root) an empty directory is bind-mounted over the
# Swift toolchain (/opt/swift, or wherever `swift` lives), so Swift's runtime is out of sight; the
# host's /opt/swift is never touched. Asserted:
#   - ldd of the static binary names no libswift*, libFoundation*, libdispatch or libBlocksRuntime;
#   - inside the namespace the toolchain directory is empty, and the ordinary build
#     (.build/release/distill, when there is one) fails to start: the namespace really hides Swift;
#   - inside it, a copy of the static binary in a scratch directory runs `distill --help`, a
#     `distill train` of 50 iterations (metrics.csv and config.json written) and a `distill cluster`
#     of 20,000 env steps with one actor (its own processes over ZeroMQ; summary.json written).
# The static binary: $DISTILL_STATIC_BINARY, else .build-static/release/distill built by
# scripts/build-static when missing (a full build: 3-6 min on this shared 2-core machine).
# Budget once built: about 10 s.
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" -eq 0 ] || lab_fail "needs root (unshare --mount, mount --bind)"
command -v unshare >/dev/null || lab_need_packages util-linux
static="${DISTILL_STATIC_BINARY:-$LAB_ROOT/.build-static/release/distill}"
if [ ! -x "$static" ]; then
    lab_say "building the static binary (scripts/build-static)"
    "$LAB_ROOT/scripts/build-static" >/dev/null || lab_fail "scripts/build-static failed"
fi
[ -x "$static" ] || lab_fail "no static binary at $static"

swift_root=/opt/swift
if command -v swift >/dev/null; then
    # The toolchain directory: .../usr/bin/swift -> ...
    swift_root=$(cd "$(dirname "$(readlink -f "$(command -v swift)")")/../.." && pwd)
fi
[ -d "$swift_root" ] || lab_fail "no Swift toolchain directory at $swift_root"

work=$(mktemp -d /tmp/lab-static.XXXXXX)
cleanup() {
    local code=$?
    if [ $code -ne 0 ] && [ -f "$work/inside.log" ]; then
        echo "---- inside the namespace (last 30 lines)" >&2
        tail -30 "$work/inside.log" >&2
    fi
    rm -rf "$work"
    exit $code
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lab_say "ldd $static"
ldd "$static" >"$work/ldd.txt" 2>&1 || true
if grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime|lib_FoundationICU' "$work/ldd.txt"; then
    lab_fail "the static binary still links Swift's runtime (above)"
fi
if grep -q 'not found' "$work/ldd.txt"; then
    cat "$work/ldd.txt" >&2
    lab_fail "the static binary needs libraries this host lacks"
fi
lab_say "shared libraries: $(awk '{print $1}' "$work/ldd.txt" | tr '\n' ' ')"
lab_say "size: $(du -h "$static" | cut -f1)"

mkdir -p "$work/empty" "$work/host"
cp "$static" "$work/host/distill"
dynamic="$LAB_ROOT/.build/release/distill"
[ -x "$dynamic" ] || dynamic=""

# Everything below runs in the namespace: mounts made there vanish with it.
cat >"$work/inside.sh" <<'EOF'
set -euo pipefail
swift_root=$1 work=$2 dynamic=$3
mount --make-rprivate /
mount --bind "$work/empty" "$swift_root"
[ -z "$(ls -A "$swift_root")" ] || { echo "inside: $swift_root is not empty"; exit 1; }
echo "inside: $swift_root is hidden"
if [ -n "$dynamic" ]; then
    if "$dynamic" --help >/dev/null 2>"$work/dynamic.err"; then
        echo "inside: the ordinary build still runs: Swift's runtime is not hidden"; exit 1
    fi
    echo "inside: the ordinary build fails as it should: $(head -1 "$work/dynamic.err")"
fi
cd "$work/host"
export PATH="$work/host:/usr/sbin:/usr/bin:/sbin:/bin"
hash -r
[ "$(command -v distill)" = "$work/host/distill" ]
distill --help | grep -q '^SUBCOMMANDS:' || { echo "inside: distill --help printed no subcommands"; exit 1; }
echo "inside: distill --help ok"
distill train --env gridworld --seed 3 --teacher q-learning --method n-distill+R --iterations 50 --out train >/dev/null
[ -s train/metrics.csv ] && [ -s train/config.json ]
echo "inside: distill train ok ($(($(wc -l <train/metrics.csv) - 1)) iterations)"
timeout 120 distill cluster --seed 1 --actors 1 --steps 20000 --no-plot --out cluster
[ -s cluster/summary.json ]
echo "inside: distill cluster ok"
EOF
lab_say "running it with $swift_root hidden (unshare --mount)"
unshare --mount bash "$work/inside.sh" "$swift_root" "$work" "$dynamic" >"$work/inside.log" 2>&1 \
    || lab_fail "the static binary failed with Swift's runtime out of sight"
grep '^inside:' "$work/inside.log" | while read -r line; do lab_say "$line"; done
python3 - "$work/host/cluster/summary.json" <<'EOF2'
import json, sys
s = json.load(open(sys.argv[1]))
print("lab[70-static-binary.sh]: the cluster without Swift: student %.3f, teacher %.3f"
      % (s["student_return"], s["teacher_return"]), file=sys.stderr)
EOF2
# The host's toolchain is untouched.
[ -x "$swift_root/usr/bin/swift" ] || [ ! -e "$swift_root/usr" ] || lab_fail "$swift_root changed on the host"
lab_say "PASS: no Swift runtime in ldd; --help, train and cluster run with $swift_root hidden"
