#!/usr/bin/env bash
# deploy/k8s, offline: renders the base and every overlay with `kubectl kustomize` (kubectl's
# built-in kustomize, no cluster), validates each render with `kubernetes-validate --strict`
# (PyPI; the Kubernetes OpenAPI schemas ship inside it) and checks with
# deploy/k8s/check-manifests.py that every --flag and DISTILL_* variable the manifests pass
# exists in `distill SUBCOMMAND --help`, that ports and Services are wired up, and that the run
# configuration in the ConfigMap loads in distill. Then it proves both gates are live: a manifest
# with a misspelt flag and one with a misspelt field must each be rejected.
# kubectl: the one on PATH, else Debian's (package kubernetes-client, kubectl 1.20 with
# kustomize v2: the manifests are written for kustomize v2 to v5).
# Budget: ~10 s once the venv exists; creating it (pip) adds ~1 min on a fresh machine.
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
work=$(mktemp -d /tmp/lab-k8s.XXXXXX)
cleanup() {
    local code=$?
    rm -rf "$work"
    exit $code
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v kubectl >/dev/null 2>&1 || lab_need_packages kubernetes-client
command -v kubectl >/dev/null 2>&1 || lab_fail "no kubectl after installing kubernetes-client"
lab_say "kubectl: $(kubectl version --client 2>/dev/null | head -1)"

venv="${K8S_VALIDATE_VENV:-$LAB_ROOT/deploy/k8s/.venv}"
requirements=("kubernetes-validate>=1.30,<2" "PyYAML>=6,<7")
lab_venv "$venv" "${requirements[@]}"
start=$(date +%s)

# A copy, so that the curve overlay's keys (made with distill keys generate) never land in the tree.
cp -r "$LAB_ROOT/deploy/k8s" "$work/k8s"
rm -rf "$work/k8s/.venv" "$work/k8s/overlays/curve/keys"
"$work/k8s/overlays/curve/make-keys" 2>/dev/null >/dev/null || lab_fail "make-keys failed"

validate() { # FILE: kubernetes-validate --strict, quiet on success
    "$venv/bin/kubernetes-validate" --strict --quiet "$1" >"$work/validate.log" 2>&1
}
renders=()
for dir in "$work/k8s/base" "$work/k8s/overlays"/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    out="$work/render-$name.yaml"
    timeout 60 kubectl kustomize "$dir" >"$out" 2>"$work/kustomize.log" \
        || lab_fail "kubectl kustomize $name failed: $(grep -v "is deprecated" "$work/kustomize.log")"
    validate "$out" || lab_fail "kubernetes-validate --strict rejected $name: $(cat "$work/validate.log")"
    lab_say "$name: $(grep -c '^kind:' "$out") resources ($(grep '^kind:' "$out" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $3; sep=", "}')), valid (--strict)"
    renders+=("$out")
done
"$venv/bin/python" "$work/k8s/check-manifests.py" "${renders[@]}" || lab_fail "check-manifests found problems (above)"
grep -q "replicas: 32" "$work/render-large.yaml" || lab_fail "the large overlay does not run 32 actors"
grep -q "replicas: 2$" "$work/render-small.yaml" || lab_fail "the small overlay does not run 2 actors"

# The gates are live: a misspelt flag, a misspelt DISTILL_ variable, a misspelt field.
sed 's/- --checkpoint-dir$/- --checkpoint-directory/; s/name: DISTILL_TEACHER_SERVER$/name: DISTILL_TEACHR_SERVER/' \
    "$work/render-small.yaml" >"$work/bad-flag.yaml"
if "$venv/bin/python" "$work/k8s/check-manifests.py" "$work/bad-flag.yaml" 2>"$work/bad-flag.log"; then
    lab_fail "check-manifests accepted --checkpoint-directory and DISTILL_TEACHR_SERVER"
fi
grep -q "has no flag --checkpoint-directory; did you mean --checkpoint-dir" "$work/bad-flag.log" \
    || lab_fail "check-manifests did not name the bad flag: $(cat "$work/bad-flag.log")"
grep -q "DISTILL_TEACHR_SERVER maps to --teachr-server" "$work/bad-flag.log" \
    || lab_fail "check-manifests did not name the bad variable: $(cat "$work/bad-flag.log")"
sed 's/^  replicas: 2$/  replica: 2/' "$work/render-small.yaml" >"$work/bad-field.yaml"
if validate "$work/bad-field.yaml"; then lab_fail "kubernetes-validate --strict accepted 'replica: 2'"; fi
lab_say "a misspelt flag, variable and field are each rejected"
lab_say "passed in $(($(date +%s) - start)) s after the venv setup"
