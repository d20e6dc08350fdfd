"""deploy/ read against the code it deploys: the Dockerfile, compose.yaml and the Kubernetes
manifests checked offline (no Docker, no cluster, no database, no network) against Settings,
the CLI, the app's routes and the nginx template."""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from tenantry.cli import cli
from tenantry.config import _CACHE_VARIABLE, InsecureSettingsError, Settings
from tenantry.kit.caches import unknown_overrides

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# What a real secret looks like to the production check: long enough, not a default.
PLACEHOLDER = "placeholder-secret-of-forty-characters-x"


# --- reading the files ---------------------------------------------------------------------


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_yaml(path)
    ]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in k8s_docs() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def workloads() -> list[dict[str, Any]]:
    return [d for d in k8s_docs() if d["kind"] in ("Deployment", "Job")]


def containers() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container of every Deployment and Job."""
    return [(w, c) for w in workloads() for c in w["spec"]["template"]["spec"]["containers"]]


def container_running(subcommand: str) -> tuple[dict[str, Any], dict[str, Any]]:
    found = [(w, c) for w, c in containers() if c["command"][1] == subcommand]
    assert len(found) == 1, f"one container runs `tenantry {subcommand}`, found {len(found)}"
    return found[0]


def compose() -> dict[str, Any]:
    (doc,) = load_yaml(DEPLOY / "compose.yaml")
    return doc


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        instruction, _, rest = (current + line).partition(" ")
        out.append((instruction.upper(), rest.strip()))
        current = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (ins, _) in enumerate(steps) if ins == "FROM")
    return steps[last_from:]


def dockerfile_cmd() -> list[str]:
    (cmd,) = [json.loads(args) for ins, args in final_stage() if ins == "CMD"]
    return cmd


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def image_port() -> int:
    return int(option(dockerfile_cmd(), "--port"))


def image_uid() -> int:
    users = [args for ins, args in final_stage() if ins == "USER"]
    assert users, "the final stage sets no USER: the container would run as root"
    return int(users[-1].split(":")[0])


def console_scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def check_command(argv: list[str]) -> None:
    """`argv` is the `tenantry` console script with a subcommand and options it accepts."""
    assert argv[0] in console_scripts(), f"{argv[0]} is no console script of pyproject.toml"
    group = typer.main.get_command(cli)
    command = group.commands.get(argv[1])
    assert command is not None, f"`tenantry {argv[1]}` is no CLI command"
    command.make_context(argv[1], list(argv[2:]))  # raises on an unknown option


# --- environments and settings ---------------------------------------------------------


@functools.cache
def setting_names() -> frozenset[str]:
    """Every variable Settings reads (case-insensitive): field names and aliases."""
    names = set()
    for field_name, field in Settings.model_fields.items():
        names.add(field_name.upper())
        if field.alias:
            names.add(field.alias.upper())
    return frozenset(names)


def is_setting(name: str) -> bool:
    # CACHE_<NAME>_TTL_S / _SIZE: read by config.py's own source, not by a field.
    return name.upper() in setting_names() or _CACHE_VARIABLE.match(name) is not None


_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (KeyError: required)."""

    def substitute(match: re.Match[str]) -> str:
        name, op = match["name"], match["op"] or ""
        if name in given:
            return given[name]
        if "?" in op:
            raise KeyError(name)
        return match["arg"] if "-" in op else ""

    return _INTERPOLATION.sub(substitute, value)


def required_variables() -> set[str]:
    text = (DEPLOY / "compose.yaml").read_text()
    return {m["name"] for m in _INTERPOLATION.finditer(text) if "?" in (m["op"] or "")}


def compose_env(name: str, *, given: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment, interpolated; every required variable a placeholder."""
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    given = given if given is not None else dict.fromkeys(required_variables(), PLACEHOLDER)
    return {k: interpolate(str(v), given) for k, v in env.items()}


def k8s_env(container: dict[str, Any], *, replace_examples: bool = True) -> dict[str, str]:
    """envFrom (the ConfigMap, the example Secret) then env; the example's CHANGE-ME values
    become placeholders of a real secret's length unless `replace_examples` is false."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            secret = one("Secret", source["secretRef"]["name"])
            for key, value in secret.get("stringData", {}).items():
                env[key] = PLACEHOLDER if replace_examples and value == "CHANGE-ME" else value
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Exactly `env` as far as Settings can tell (this shell's own settings hidden)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if is_setting(name):
                mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        yield


def settings_from(env: dict[str, str]) -> Settings:
    with environment(env):
        return Settings(_env_file=None)


@pytest.fixture(scope="module")
def get_routes() -> set[str]:
    """Paths the production app (built from the API pod's env) answers GET on. Built
    without its lifespan: nothing connects. Logging and hashing are process-wide, left as
    they are for the rest of the session."""
    from tenantry import app as app_module

    settings = settings_from(k8s_env(container_running("serve")[1]))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app_module, "configure_logging", lambda _: None)
        mp.setattr(app_module, "configure_password_hashing", lambda _: None)
        application = app_module.create_app(settings)
    return {
        route.path
        for route in application.routes
        if "GET" in (getattr(route, "methods", None) or ())
    }


def seconds(duration: str) -> float:
    """A compose duration: `45s`, `1m30s`."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity: 500m, 1, 384Mi, 1Gi."""
    text = str(value)
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(suffixes.items(), key=lambda s: -len(s[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


# --- every file ------------------------------------------------------------------------


def test_every_yaml_file_parses_and_every_manifest_names_itself() -> None:
    paths = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert DEPLOY / "compose.yaml" in paths
    assert len(paths) >= 8
    for path in paths:
        assert load_yaml(path), f"{path} is empty"
    for doc in k8s_docs():
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc
        assert doc["metadata"]["name"]


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    (kustomization,) = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization lists {name}, which is missing"
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # An example's values must never be applied: you apply your own copy.
    assert on_disk - listed == {SECRET_EXAMPLE.name}
    images = {c["image"].split(":")[0] for _, c in containers()}
    assert {i["name"] for i in kustomization["images"]} == images


# --- Dockerfile ------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_slim() -> None:
    froms = [args.split() for ins, args in dockerfile() if ins == "FROM"]
    assert len(froms) >= 2
    stages = {f[2] for f in froms if len(f) == 3 and f[1].upper() == "AS"}
    for f in froms:
        assert f[0] == "python:3.11-slim" or f[0] in stages, f
    # The runtime starts clean (no uv, no caches) and takes only the build's /app.
    assert final_stage()[0][1].split()[0] == "python:3.11-slim"
    copies = [args for ins, args in final_stage() if ins == "COPY"]
    assert any(a.startswith("--from=") for a in copies)


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    # Numeric: Kubernetes' runAsNonRoot cannot verify a user name.
    assert image_uid() != 0


def test_dockerfile_installs_the_lock_without_dev_dependencies() -> None:
    steps = dockerfile()
    args = {a.split("=")[0]: a.split("=", 1)[1] for i, a in steps if i == "ARG" and "=" in a}
    runs = [a for i, a in steps if i == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs, "no `uv sync`: the image would not install uv.lock"
    for run in syncs:
        words = run.split()
        assert "--frozen" in words or "--locked" in words, run
        assert "--no-default-groups" in words, run  # dev and bench are default groups
        assert not {"--group", "--all-groups", "--dev", "--only-dev"} & set(words), run
    lock_copied = next(i for i, (ins, a) in enumerate(steps) if ins == "COPY" and "uv.lock" in a)
    first_sync = next(i for i, (ins, a) in enumerate(steps) if ins == "RUN" and "uv sync" in a)
    assert lock_copied < first_sync
    # The uv that wrote the lock, as script/bootstrap installs.
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked_uv = next(p["version"] for p in lock["package"] if p["name"] == "uv")
    pins = [re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], r) for r in runs]
    assert any(f"uv=={locked_uv}" in r for r in pins), f"uv is not pinned to {locked_uv}"


def test_dockerfile_copies_what_the_app_reads_at_run_time() -> None:
    # kit/migrations.py reads alembic.ini and migrations/ beside the package.
    sources = [
        word
        for ins, args in dockerfile()
        if ins == "COPY" and not args.startswith("--from")
        for word in args.split()[:-1]
    ]
    for needed in ("tenantry", "migrations", "alembic.ini", "pyproject.toml", "uv.lock"):
        assert needed in sources, f"{needed} is not copied into the image"
        assert (ROOT / needed).exists()
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", "bench/results", "**/.env"} <= ignored
    assert not ignored & set(sources)


def test_dockerfile_cmd_serves_the_port_it_exposes_without_migrating() -> None:
    cmd = dockerfile_cmd()
    check_command(cmd)
    assert cmd[1] == "serve"
    assert "--no-migrate" in cmd
    assert option(cmd, "--host") == "0.0.0.0"
    exposed = [int(a) for ins, a in final_stage() if ins == "EXPOSE"]
    assert exposed == [image_port()]


def test_dockerfile_healthcheck_asks_healthz_on_the_served_port(get_routes: set[str]) -> None:
    (check,) = [a for ins, a in final_stage() if ins == "HEALTHCHECK"]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)['\"]", check)
    assert url, check
    assert "curl" not in check and "wget" not in check  # neither is in python:3.11-slim
    assert int(url[1]) == image_port()
    assert url[2] == "/healthz" and url[2] in get_routes


# --- compose.yaml ----------------------------------------------------------------------


def app_services() -> list[str]:
    return [n for n, s in compose()["services"].items() if "build" in s]


def test_compose_builds_one_image_for_migrate_api_and_worker() -> None:
    assert sorted(app_services()) == ["api", "migrate", "worker"]
    for name in app_services():
        build = service(name)["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, "the Dockerfile's COPYs are relative to the repository root"
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert len({service(n)["image"] for n in app_services()}) == 1


def test_compose_topology() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["nginx"]["image"].split(":")[0] == "nginx"
    assert services["api"]["deploy"]["replicas"] == 3
    for name in ("api", "worker"):
        migrate = services[name]["depends_on"]["migrate"]
        assert migrate["condition"] == "service_completed_successfully"
    assert "ports" not in services["api"]  # only nginx is published
    assert "8080:8080" in services["nginx"]["ports"]


def test_compose_commands_are_the_cli_commands() -> None:
    assert service("migrate")["command"][:2] == ["tenantry", "migrate"]
    assert service("worker")["command"][:2] == ["tenantry", "worker"]
    assert "command" not in service("api")  # the image's CMD
    for name in ("migrate", "worker"):
        check_command(service(name)["command"])


def test_compose_healthchecks(get_routes: set[str]) -> None:
    for name in ("postgres", "redis", "api"):
        check = service(name)["healthcheck"]
        assert not check.get("disable") and check["test"], name
    test = " ".join(service("api")["healthcheck"]["test"])
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)['\"]", test)
    assert url and int(url[1]) == image_port() and url[2] in get_routes
    # The image's HEALTHCHECK asks for HTTP; these serve none and would show as unhealthy.
    for name in ("migrate", "worker"):
        assert service(name)["healthcheck"] == {"disable": True}


def test_compose_env_names_are_settings() -> None:
    for name in app_services():
        unknown = [k for k in compose_env(name) if not is_setting(k)]
        assert not unknown, f"{name}: {unknown} are no settings of tenantry.config.Settings"


def test_compose_env_passes_the_production_check() -> None:
    for name in app_services():
        settings = settings_from(compose_env(name))
        assert settings.is_production and not settings.embedded
        assert settings.redis_url
        assert not unknown_overrides(settings.cache_overrides)
    assert settings_from(compose_env("api")).worker_in_process is False


def test_compose_secrets_have_no_defaults() -> None:
    env = service("api")["environment"]
    for name in ("JWT_SECRET", "API_KEY_SECRET", "SECRETS_KEYS", "DEMO_PASSWORD"):
        with pytest.raises(KeyError):
            interpolate(str(env[name]), {})
    with pytest.raises(InsecureSettingsError):
        settings_from(compose_env("api", given=dict.fromkeys(required_variables(), "short")))


def test_compose_trusts_nginx_network_only() -> None:
    trusted = settings_from(compose_env("api")).trusted_proxies
    assert trusted
    networks = compose()["networks"]
    nginx_nets = service("nginx")["networks"]
    for net in nginx_nets:
        subnets = [c["subnet"] for c in networks[net]["ipam"]["config"]]
        for subnet in subnets:
            assert any(
                ipaddress.ip_network(subnet).subnet_of(ipaddress.ip_network(t)) for t in trusted
            ), f"nginx's {net} network {subnet} is not in TRUSTED_PROXIES {trusted}"
    # The data network (PostgreSQL, Redis, the worker) is not nginx's.
    assert set(nginx_nets) < set(service("api")["networks"])


def shutdown_s(settings: Settings) -> float:
    """How long a served API process takes from SIGTERM to its exit, at most."""
    return settings.shutdown_drain_s + settings.shutdown_grace_s


def test_compose_grace_periods() -> None:
    api = settings_from(compose_env("api"))
    assert seconds(service("api")["stop_grace_period"]) > shutdown_s(api)
    worker = settings_from(compose_env("worker"))
    assert seconds(service("worker")["stop_grace_period"]) > worker.jobs_shutdown_grace_s


def test_compose_postgres_has_room_for_every_pool() -> None:
    command = service("postgres").get("command", [])
    limits = [int(a.split("=")[1]) for a in command if a.startswith("max_connections=")]
    max_connections = limits[0] if limits else 100
    used = 0
    for name in ("api", "worker"):
        settings = settings_from(compose_env(name))
        processes = service(name).get("deploy", {}).get("replicas", 1)
        each = settings.db_pool_size + settings.db_max_overflow + settings.jobs_pool_size
        each += 1 if name == "worker" else 0  # the jobs worker's LISTEN connection
        each += 0 if settings.redis_url else 1  # the cache bus's LISTEN, without Redis
        used += processes * each
    assert used <= max_connections - 3  # superuser_reserved_connections


def rendered_nginx_conf() -> str:
    """deploy/nginx.conf as the nginx service's command renders it (its sed expressions)."""
    nginx = service("nginx")
    assert nginx["command"][:2] == ["sh", "-c"]
    words = shlex.split(nginx["command"][2])
    template = next(w for w in words if w.endswith(".template"))
    mounts = [v.split(":") for v in nginx["volumes"]]
    assert ["./nginx.conf", template, "ro"] in mounts, "the template is mounted read-only"
    text = (DEPLOY / "nginx.conf").read_text()
    expressions = [words[i + 1] for i, w in enumerate(words) if w == "-e"]
    assert expressions
    for expression in expressions:
        delimiter = expression[1]
        command, pattern, replacement, flags = expression.split(delimiter)
        assert command == "s"
        text = (
            text.replace(pattern, replacement)
            if "g" in flags
            else text.replace(pattern, replacement, 1)
        )
    return text


def test_compose_nginx_fills_every_template_marker() -> None:
    markers = set(re.findall(r"@@[A-Z]+@@", (DEPLOY / "nginx.conf").read_text()))
    assert markers == {"@@RUNTIME@@", "@@LISTEN@@", "@@SERVERS@@", "@@DAEMON@@"}
    conf = rendered_nginx_conf()
    assert "@@" not in conf
    assert re.search(r"^daemon off;", conf, re.M)  # the container's foreground process
    (server,) = re.findall(r"^\s*server (\S+?)(?::(\d+))? .*;$", conf, re.M)
    assert server == ("api", str(image_port()))  # every replica, through Docker's DNS
    (listen,) = re.findall(r"^\s*listen (\S+)", conf, re.M)
    published = {p.split(":")[-1] for p in service("nginx")["ports"]}
    assert listen.rsplit(":", 1)[-1] in published
    runtime = re.search(r"^pid (\S+)/nginx\.pid;", conf, re.M)
    assert runtime and f"mkdir -p {runtime[1]}" in service("nginx")["command"][2]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed here")
def test_compose_nginx_conf_is_valid_for_nginx(tmp_path: Path) -> None:
    # `api` resolves only inside compose; the syntax is what is checked here.
    conf = rendered_nginx_conf().replace("server api:", "server 127.0.0.1:")
    conf = re.sub(r"/tmp/nginx\b", str(tmp_path), conf)
    (tmp_path / "nginx.conf").write_text(conf)
    done = subprocess.run(
        ["nginx", "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", "nginx.conf"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# --- Kubernetes ------------------------------------------------------------------------


def test_k8s_env_names_are_settings() -> None:
    names = set(one("ConfigMap")["data"])
    names |= set(one("Secret").get("stringData", {})) | set(one("Secret").get("data", {}))
    for _, container in containers():
        names |= {item["name"] for item in container.get("env", [])}
    # The example's commented-out keys are settings too.
    names |= set(re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]+):", SECRET_EXAMPLE.read_text(), re.M))
    unknown = sorted(n for n in names if not is_setting(n))
    assert not unknown, f"{unknown} are no settings of tenantry.config.Settings"


def test_k8s_env_comes_from_the_configmap_and_the_secret() -> None:
    for _, container in containers():
        refs = container["envFrom"]
        one("ConfigMap", next(r["configMapRef"]["name"] for r in refs if "configMapRef" in r))
        one("Secret", next(r["secretRef"]["name"] for r in refs if "secretRef" in r))


def test_k8s_env_passes_the_production_check() -> None:
    for _, container in containers():
        settings = settings_from(k8s_env(container))
        assert settings.is_production and not settings.embedded, container["name"]
        assert not unknown_overrides(settings.cache_overrides)
    assert settings_from(k8s_env(container_running("serve")[1])).worker_in_process is False


def test_k8s_example_secret_is_refused_as_it_is() -> None:
    # Applied unedited, the pods refuse to start instead of running on known secrets.
    with pytest.raises(InsecureSettingsError, match="JWT_SECRET") as refused:
        settings_from(k8s_env(container_running("serve")[1], replace_examples=False))
    assert "API_KEY_SECRET" in str(refused.value) and "SECRETS_KEYS" in str(refused.value)


def test_k8s_commands_and_images() -> None:
    assert sorted(c["command"][1] for _, c in containers()) == ["migrate", "serve", "worker"]
    for _, container in containers():
        check_command(container["command"])
    assert len({c["image"] for _, c in containers()}) == 1
    _, api = container_running("serve")
    assert "--no-migrate" in api["command"]
    assert [p["containerPort"] for p in api["ports"]] == [int(option(api["command"], "--port"))]


def test_k8s_every_container_has_requests_and_limits() -> None:
    for _, container in containers():
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = quantity(resources["requests"][resource])
            limit = quantity(resources["limits"][resource])
            assert 0 < request <= limit, (container["name"], resource)


def test_k8s_runs_as_the_image_user_on_a_read_only_root() -> None:
    for workload, container in containers():
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == image_uid()
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        mounted = {m["mountPath"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            assert "emptyDir" in volumes[mount["name"]]
        assert "/tmp" in mounted  # tempfile's directory


def test_k8s_app_writes_only_to_mounted_volumes() -> None:
    (workdir,) = [a for i, a in final_stage() if i == "WORKDIR"]
    for sub in ("serve", "worker"):  # both send mail: MAIL_OUTBOX_DIR without SMTP_URL
        _, container = container_running(sub)
        outbox = settings_from(k8s_env(container)).mail_outbox_dir
        outbox = outbox if outbox.is_absolute() else Path(workdir) / outbox
        mounted = [Path(m["mountPath"]) for m in container["volumeMounts"]]
        assert any(outbox.is_relative_to(m) for m in mounted), f"{sub}: {outbox} is read-only"


def test_k8s_api_probes_ask_existing_routes_on_the_container_port(get_routes: set[str]) -> None:
    _, api = container_running("serve")
    ports = {p.get("name"): p["containerPort"] for p in api["ports"]}
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe_name not in api:
            assert probe_name == "startupProbe", f"the API has no {probe_name}"
            continue
        get = api[probe_name]["httpGet"]
        assert get["path"] in get_routes, f"{probe_name}: no GET {get['path']} in the app"
        assert get["path"] == expected.get(probe_name, get["path"])
        port = ports.get(get["port"], get["port"])
        assert port == image_port(), f"{probe_name} asks port {get['port']}"


def test_k8s_grace_periods() -> None:
    workload, api = container_running("serve")
    grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > shutdown_s(settings_from(k8s_env(api)))
    workload, worker = container_running("worker")
    grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings_from(k8s_env(worker)).jobs_shutdown_grace_s
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & worker.keys()
    assert "ports" not in worker


def test_k8s_service_reaches_the_api_pods() -> None:
    workload, api = container_running("serve")
    labels = workload["spec"]["template"]["metadata"]["labels"]
    svc = one("Service")
    assert svc["spec"]["selector"].items() <= labels.items()
    assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = {p.get("name"): p["containerPort"] for p in api["ports"]}
    for port in svc["spec"]["ports"]:
        assert ports.get(port["targetPort"], port["targetPort"]) == image_port()
    # The worker's pods are not the Service's.
    worker, _ = container_running("worker")
    assert (
        not svc["spec"]["selector"].items()
        <= worker["spec"]["template"]["metadata"]["labels"].items()
    )


def test_k8s_hpa_scales_the_api_deployment_by_cpu_and_memory() -> None:
    hpa = one("HorizontalPodAutoscaler")
    api, _ = container_running("serve")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", api["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    metrics = {
        m["resource"]["name"]: m["resource"]["target"]
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Resource"
    }
    assert set(metrics) == {"cpu", "memory"}
    for target in metrics.values():
        assert target["type"] == "Utilization" and 0 < target["averageUtilization"] <= 100
    # The HPA owns the count: a `replicas` here would reset it on every apply.
    assert "replicas" not in api["spec"]
    pdb = one("PodDisruptionBudget")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # drains can proceed


def test_k8s_migrate_job() -> None:
    job, container = container_running("migrate")
    assert job["kind"] == "Job"
    assert container["command"] == ["tenantry", "migrate"]
    assert isinstance(job["spec"]["backoffLimit"], int)
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
