#!/usr/bin/env python3
"""Checks rendered Kubernetes manifests (kubectl kustomize OVERLAY) against the distill binary.

kubernetes-validate checks the manifests' schema; this checks what it cannot know:

- every `--flag` a distill container passes (command + args, and exec probes) exists in
  `distill SUBCOMMAND --help`, and the subcommand exists;
- every DISTILL_* environment variable maps to a flag of the container's subcommand, the way
  distill reads them (DISTILL_BIND_CONTROL is --bind-control; an option takes any value, a
  boolean flag only 1/true/yes, anything else would be ignored silently);
- the wiring: a bound port (`--bind*`, DISTILL_BIND*) is a containerPort of its container; an
  endpoint tcp://NAME:PORT (`--learner`, `--teacher-server`, ...) names a Service of the manifests with
  that port; each Service's targetPort names a port of the pods it selects;
- each run configuration passed with --config/DISTILL_CONFIG is a key of a mounted ConfigMap,
  and distill loads it (builds the environment and the teacher: `distill teacher --config FILE
  --export-table ...`).

    check-manifests.py RENDERED.yaml [...]      (exit 0: all good; 1: problems, each printed)
    DISTILL_BINARY   the distill binary (default: distill on PATH)
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

RESERVED = {"DISTILL_BINARY", "DISTILL_PYTHON", "DISTILL_PARENT_PID"}  # not flags (RoleSupport.swift)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
ENDPOINT = re.compile(r"^tcp://([^:/]+):(\d+)$")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod", "CronJob"}


class Help:
    """`distill PATH --help`, run once per subcommand path."""

    def __init__(self, binary: str):
        self.binary = binary
        self.cache: dict[tuple[str, ...], str | None] = {}

    def text(self, path: tuple[str, ...]) -> str | None:
        if path not in self.cache:
            result = subprocess.run(
                [self.binary, *path, "--help"], capture_output=True, text=True, timeout=30,
                env={k: v for k, v in os.environ.items() if not k.startswith("DISTILL_")},
            )
            usage = result.stdout if result.returncode == 0 else None
            # An unknown subcommand is an error; ArgumentParser prints the parent's help instead.
            if usage is not None and path and f"USAGE: distill {' '.join(path)}" not in usage.replace("\n", " "):
                usage = None
            self.cache[path] = usage
        return self.cache[path]

    def flags(self, path: tuple[str, ...]) -> set[str]:
        return set(FLAG.findall(self.text(path) or ""))

    def required(self, path: tuple[str, ...]) -> set[str]:
        """The options the USAGE line lists outside [brackets]."""
        text = self.text(path) or ""
        usage = text[text.find("USAGE:"):].split("\n\n")[0]
        previous = None
        while previous != usage:
            previous, usage = usage, re.sub(r"\[[^\[\]]*\]", "", usage)
        return set(FLAG.findall(usage)) - {"--help"}

    def is_option(self, path: tuple[str, ...], flag: str) -> bool:
        return f"{flag} <" in (self.text(path) or "")


def pod_spec(resource):
    kind, spec = resource.get("kind"), resource.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
    return (spec.get("template") or {}).get("spec")


def is_distill(program: str) -> bool:
    return os.path.basename(program) == "distill"


def split(argv: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """(subcommand path, the rest) of the arguments after the program name."""
    path = []
    for token in argv:
        if token.startswith("-"):
            break
        path.append(token)
    return tuple(path), argv[len(path):]


def option_values(rest: list[str]) -> list[tuple[str, str | None]]:
    """(flag, value) pairs: --flag value or --flag=value (value None for a trailing flag)."""
    pairs, i = [], 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("--"):
            if "=" in token:
                flag, value = token.split("=", 1)
                pairs.append((flag, value))
            elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                pairs.append((token, rest[i + 1]))
                i += 1
            else:
                pairs.append((token, None))
        i += 1
    return pairs


class Checker:
    def __init__(self, binary: str, documents: list[dict], source: str):
        self.help = Help(binary)
        self.binary = binary
        self.documents = documents
        self.source = source
        self.problems: list[str] = []
        self.counts = {"containers": 0, "flags": 0, "env": 0, "probes": 0, "endpoints": 0, "configs": 0}
        self.services = {
            d["metadata"]["name"]: d for d in documents if d.get("kind") == "Service"
        }
        self.config_maps = {
            d["metadata"]["name"]: d for d in documents if d.get("kind") == "ConfigMap"
        }
        self.loaded_configs: dict[str, bool] = {}

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def check(self) -> None:
        for resource in self.documents:
            if resource.get("kind") in WORKLOADS:
                spec = pod_spec(resource) or {}
                name = f"{resource['kind']}/{resource['metadata']['name']}"
                for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                    self.check_container(name, spec, container)
            if resource.get("kind") == "Service":
                self.check_service(resource)

    def check_argv(self, where: str, argv: list[str]) -> tuple[str, ...] | None:
        path, rest = split(argv)
        if not path:
            self.problem(where, "no distill subcommand (e.g. learner, actor, teacher)")
            return None
        if self.help.text(path) is None:
            self.problem(where, f"`distill {' '.join(path)}` is not a subcommand (see distill --help)")
            return None
        known = self.help.flags(path)
        for token in rest:
            if not token.startswith("--"):
                continue
            flag = token.split("=", 1)[0]
            self.counts["flags"] += 1
            if flag not in known:
                close = difflib.get_close_matches(flag, sorted(known), n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                self.problem(where, f"`distill {' '.join(path)}` has no flag {flag}{hint}")
        return path

    def check_container(self, workload: str, spec: dict, container: dict) -> None:
        command, args = container.get("command") or [], container.get("args") or []
        image = str(container.get("image", ""))
        if command and is_distill(command[0]):
            argv = command[1:] + args
        elif not command and os.path.basename(image.split(":")[0]).startswith("distill"):
            argv = args  # the image's ENTRYPOINT is distill (deploy/k8s/Dockerfile)
        else:
            return
        self.counts["containers"] += 1
        where = f"{workload} container {container.get('name')}"
        path = self.check_argv(where, [str(a) for a in argv])
        for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe_command = ((container.get(probe_name) or {}).get("exec") or {}).get("command") or []
            if probe_command and is_distill(probe_command[0]):
                self.counts["probes"] += 1
                self.check_argv(f"{where} {probe_name}", [str(a) for a in probe_command[1:]])
        if path is None:
            return
        settings = option_values([str(a) for a in argv][len(path):])
        top = path[:1]  # distill maps DISTILL_* to the flags of its first subcommand
        for variable in container.get("env") or []:
            name = variable.get("name", "")
            if not name.startswith("DISTILL_") or name in RESERVED:
                continue
            self.counts["env"] += 1
            flag = "--" + name[len("DISTILL_"):].lower().replace("_", "-")
            value = variable.get("value")
            if flag not in self.help.flags(top):
                close = difflib.get_close_matches(flag, sorted(self.help.flags(top)), n=1)
                hint = f" (did you mean {close[0]}, i.e. DISTILL_{close[0][2:].upper().replace('-', '_')}?)" if close else ""
                self.problem(where, f"{name} maps to {flag}, which `distill {top[0]}` does not have{hint}")
                continue
            if not self.help.is_option(top, flag) and str(value).lower() not in ("1", "true", "yes"):
                self.problem(where, f"{name}={value!r}: {flag} is a switch, distill reads only 1, true or yes")
                continue
            if any(f == flag for f, _ in settings):
                continue  # the command line wins; the variable is ignored
            if value is not None:
                settings.append((flag, str(value)))
        for flag in sorted(self.help.required(path) - {f for f, _ in settings}):
            self.problem(where, f"`distill {' '.join(path)}` needs {flag} (in args, or DISTILL_{flag[2:].upper().replace('-', '_')})")
        self.check_wiring(where, container, settings)
        self.check_configs(where, spec, container, settings)

    def check_wiring(self, where: str, container: dict, settings) -> None:
        ports = {p.get("containerPort") for p in container.get("ports") or []}
        for flag, value in settings:
            if value is None:
                continue
            if flag.startswith("--bind"):
                match = re.match(r"^tcp://(\*|0\.0\.0\.0|\[::\]):(\d+)$", value)
                if not match:
                    self.problem(where, f"{flag} {value}: bind tcp://*:PORT so the Service can reach it")
                elif int(match.group(2)) not in ports:
                    self.problem(where, f"{flag} {value}: port {match.group(2)} is not a containerPort {sorted(ports)}")
                self.counts["endpoints"] += 1
            match = ENDPOINT.match(value)
            if match and not flag.startswith("--bind"):
                host, port = match.group(1), int(match.group(2))
                service = self.services.get(host.split(".")[0])
                self.counts["endpoints"] += 1
                if service is None:
                    self.problem(where, f"{flag} {value}: no Service named {host.split('.')[0]} in these manifests")
                elif port not in {p.get("port") for p in service["spec"].get("ports") or []}:
                    self.problem(where, f"{flag} {value}: Service {host} has no port {port}")

    def check_configs(self, where: str, spec: dict, container: dict, settings) -> None:
        for flag, value in settings:
            if flag != "--config" or value is None:
                continue
            self.counts["configs"] += 1
            mount = next(
                (m for m in container.get("volumeMounts") or [] if value.startswith(m["mountPath"].rstrip("/") + "/")),
                None,
            )
            volume = mount and next((v for v in spec.get("volumes") or [] if v.get("name") == mount["name"]), None)
            config_map = volume and (volume.get("configMap") or {}).get("name")
            if not config_map:
                self.problem(where, f"--config {value} is not on a mounted ConfigMap")
                continue
            key = value[len(mount["mountPath"].rstrip("/")) + 1:]
            data = (self.config_maps.get(config_map) or {}).get("data") or {}
            if key not in data:
                self.problem(where, f"--config {value}: ConfigMap {config_map} has no key {key}")
                continue
            if config_map not in self.loaded_configs:
                self.loaded_configs[config_map] = self.load_config(where, config_map, key, data[key])

    def load_config(self, where: str, config_map: str, key: str, text: str) -> bool:
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, key)
            with open(path, "w") as handle:
                handle.write(text)
            result = subprocess.run(
                [self.binary, "teacher", "--config", path, "--export-table", os.path.join(directory, "table.json")],
                capture_output=True, text=True, timeout=120,
                env={k: v for k, v in os.environ.items() if not k.startswith("DISTILL_")},
            )
        if result.returncode != 0:
            message = (result.stderr.strip() or result.stdout.strip()).splitlines()[:3]
            self.problem(where, f"ConfigMap {config_map} key {key} does not load in distill: {' '.join(message)}")
            return False
        return True

    def check_service(self, service: dict) -> None:
        selector = (service.get("spec") or {}).get("selector") or {}
        pods = []
        for resource in self.documents:
            if resource.get("kind") in WORKLOADS:
                template = (resource.get("spec") or {}).get("template") or {}
                labels = (template.get("metadata") or {}).get("labels") or {}
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    pods.append(pod_spec(resource) or {})
        where = f"Service/{service['metadata']['name']}"
        if not pods:
            self.problem(where, f"selector {selector} matches no pod template")
            return
        names = {p.get("name") for pod in pods for c in pod.get("containers") or [] for p in c.get("ports") or []}
        numbers = {
            p.get("containerPort") for pod in pods for c in pod.get("containers") or [] for p in c.get("ports") or []
        }
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if (isinstance(target, str) and target not in names) or (isinstance(target, int) and target not in numbers):
                self.problem(where, f"targetPort {target} is not a port of the pods it selects")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    binary = os.environ.get("DISTILL_BINARY") or shutil.which("distill")
    if not binary or not os.access(binary, os.X_OK):
        print("check-manifests: no distill binary: set DISTILL_BINARY or put distill on PATH", file=sys.stderr)
        return 2
    failed = False
    for source in argv:
        with open(source) as handle:
            documents = [d for d in yaml.safe_load_all(handle) if d]
        checker = Checker(binary, documents, source)
        checker.check()
        counts = ", ".join(f"{v} {k}" for k, v in checker.counts.items())
        if checker.problems:
            failed = True
            for line in checker.problems:
                print(f"check-manifests: ERROR {line}", file=sys.stderr)
            print(f"check-manifests: {source}: {len(checker.problems)} problems ({counts})", file=sys.stderr)
        else:
            print(f"check-manifests: {source}: ok ({counts})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
