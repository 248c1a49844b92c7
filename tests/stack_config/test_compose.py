"""docker-compose.yml and the image it builds, checked by construction (no Docker engine)."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from modelwatch.tokens import (
    MONITOR_TOKENS,
    SERVING_TOKENS,
    STACK_FILES,
    ExposedWithoutTokens,
    check_exposure,
    is_loopback,
    load_token_files,
)
from tests.stack_config import contract as c
from tests.stack_config.compose import (
    command_flag,
    container_path_to_repo,
    image_tag,
    interpolated,
    load_compose,
    mounts,
    published_ports,
    repo_path,
)

COMPOSE = load_compose()
SERVICES = COMPOSE["services"]
EXPECTED_SERVICES = {
    "postgres",
    "mlflow",
    "trainer",
    "serving",
    "monitor",
    "prometheus",
    "alertmanager",
    "pushgateway",
    "grafana",
}
PUBLIC = {"grafana", "gateway"}  # the only services listening on every interface
ONE_SHOT = {"trainer"}
APP_IMAGE_SERVICES = {"mlflow", "trainer", "serving", "monitor"}


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _command(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(a) for a in command]


def test_the_stack_has_every_service():
    assert EXPECTED_SERVICES <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_service_has_a_pinned_image_or_a_build(name):
    service = SERVICES[name]
    assert "image" in service or "build" in service, name
    if "image" in service:
        repo, tag = image_tag(service["image"])
        assert tag, f"{name}: {service['image']} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), (
            f"{name}: {service['image']} is not pinned"
        )
    if "build" in service:
        build = (
            service["build"]
            if isinstance(service["build"], dict)
            else {"context": service["build"]}
        )
        context = repo_path(build.get("context", "."))
        assert context.is_dir(), name
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_app_services_share_the_one_built_image():
    images = {SERVICES[n]["image"] for n in APP_IMAGE_SERVICES}
    assert len(images) == 1
    for name in APP_IMAGE_SERVICES:
        assert SERVICES[name]["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}, name


def test_dockerfile():
    text = (c.ROOT / "docker" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.M)
    repo, tag = image_tag(base)
    assert (
        repo == "python"
        and tag.startswith("3.11")
        and "slim" in tag
        and re.match(r"3\.11\.\d+", tag)
    ), base
    lock = text.index("pip install -r requirements.lock")
    project = text.index("pip install --no-deps")
    assert lock < project, "the locked dependencies first, then the project without dependencies"
    assert re.search(r"^USER\s+(?!root)\w+", text, re.M), "the image runs unprivileged"
    for copied in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s", text, re.M):
        assert (c.ROOT / copied).exists(), f"COPY {copied}: no such file"
    ignore = (c.ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignore and "mlruns" in ignore and ".git" in ignore


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_long_running_services_have_healthchecks(name):
    service = SERVICES[name]
    if name in ONE_SHOT:
        assert service.get("restart") == "no"
        return
    assert service.get("restart") in ("unless-stopped", "always"), name
    check = service.get("healthcheck")
    assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    test = check["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), name


def test_healthchecks_probe_the_right_port():
    expectations = {
        "mlflow": "5000",
        "serving": "8000",
        "monitor": "8001",
        "prometheus": "9090",
        "alertmanager": "9093",
        "pushgateway": "9091",
        "grafana": "3000",
    }
    for name, port in expectations.items():
        test = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/" in test, name
    assert "/ready" in " ".join(SERVICES["serving"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_depends_on(name):
    deps = SERVICES[name].get("depends_on") or {}
    if isinstance(deps, list):
        deps = {d: {"condition": "service_started"} for d in deps}
    for dep, spec in deps.items():
        assert dep in SERVICES, f"{name} depends on unknown service {dep}"
        condition = spec["condition"]
        if condition == "service_healthy":
            assert SERVICES[dep].get("healthcheck"), (
                f"{name} waits for {dep} to be healthy, it has no healthcheck"
            )
        elif condition == "service_completed_successfully":
            assert dep in ONE_SHOT, f"{dep} never completes"
        else:
            assert condition == "service_started"


def test_startup_order():
    def waits(name, dep, condition):
        return SERVICES[name]["depends_on"][dep]["condition"] == condition

    assert waits("mlflow", "postgres", "service_healthy")
    assert waits("trainer", "mlflow", "service_healthy")
    for name in ("serving", "monitor"):
        assert waits(name, "trainer", "service_completed_successfully")
        assert waits(name, "mlflow", "service_healthy")
        assert waits(name, "postgres", "service_healthy")
    # no scraping before the scraped exist (ServingDown fires on an absent target)
    assert waits("prometheus", "serving", "service_started") and waits(
        "prometheus", "monitor", "service_started"
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ports_are_bound_only_where_they_must_be_public(name):
    service = SERVICES[name]
    for host_ip, host_port, container_port in published_ports(service):
        assert host_port, f"{name}: publish {container_port} on a fixed host port, not a random one"
        if name not in PUBLIC:
            assert host_ip == "127.0.0.1", (
                f"{name}: {container_port} must bind to 127.0.0.1 or not at all"
            )
    if service.get("deploy", {}).get("replicas", 1) > 1:
        assert not service.get("ports"), f"{name}: replicas cannot share a host port"
        assert "container_name" not in service


def test_host_ports_are_unique_and_grafana_is_public():
    seen = {}
    for name, service in SERVICES.items():
        for _host_ip, host_port, _ in published_ports(service):
            assert host_port not in seen, (
                f"{name} and {seen.get(host_port)} both publish {host_port}"
            )
            seen[host_port] = name
    assert seen.get("3000") == "grafana"
    for name in ("postgres", "serving", "monitor", "trainer"):
        assert not SERVICES[name].get("ports"), f"{name} is internal"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_mounted_files_exist_and_named_volumes_are_declared(name):
    declared = set(COMPOSE.get("volumes") or {})
    for m in mounts(SERVICES[name]):
        if m.kind == "bind":
            assert m.source.startswith("./"), f"{name}: bind mounts are relative to the repository"
            assert repo_path(m.source).exists(), f"{name}: {m.source} does not exist"
            assert m.read_only, f"{name}: config mount {m.source} should be read-only"
        else:
            assert m.source in declared, f"{name}: volume {m.source} is not declared"


def test_every_declared_volume_is_used():
    used = {m.source for s in SERVICES.values() for m in mounts(s) if m.kind == "volume"}
    assert set(COMPOSE.get("volumes") or {}) == used


def test_secrets_are_declared():
    declared = set(COMPOSE.get("secrets") or {})
    for name, service in SERVICES.items():
        for s in service.get("secrets", []):
            assert (s if isinstance(s, str) else s["source"]) in declared, name
    for spec in (COMPOSE.get("secrets") or {}).values():
        if "file" in spec:
            assert repo_path(spec["file"]).exists()


def test_prometheus_mounts_its_config_and_every_rule_file():
    prom = SERVICES["prometheus"]
    config_path = command_flag(prom, "--config.file")
    assert (
        container_path_to_repo(prom, config_path)
        == (c.PROMETHEUS_DIR / "prometheus.compose.yml").resolve()
    )
    for rule_file in c.load_yaml(c.PROMETHEUS_DIR / "prometheus.compose.yml")["rule_files"]:
        mapped = container_path_to_repo(prom, rule_file)
        assert mapped is not None and mapped.exists(), (
            f"{rule_file} is not mounted into the prometheus service"
        )
    storage = command_flag(prom, "--storage.tsdb.path")
    assert any(m.kind == "volume" and m.target == storage for m in mounts(prom))


def test_alertmanager_mounts_its_config_and_keeps_state_on_a_volume():
    am = SERVICES["alertmanager"]
    config_path = command_flag(am, "--config.file")
    assert (
        container_path_to_repo(am, config_path)
        == (c.ALERTMANAGER_DIR / "alertmanager.compose.yml").resolve()
    )
    storage = command_flag(am, "--storage.path")
    assert any(m.kind == "volume" and m.target == storage for m in mounts(am))
    assert "--cluster.listen-address=" in _command(am), "a single Alertmanager: no gossip port"


def test_postgres_init_script_creates_the_prediction_log_database():
    pg = SERVICES["postgres"]
    env = _env(pg)
    init = [m for m in mounts(pg) if m.target.startswith("/docker-entrypoint-initdb.d/")]
    assert init and all(repo_path(m.source).is_file() for m in init)
    sql = " ".join(repo_path(m.source).read_text() for m in init)
    store_db = urlparse(
        interpolated(_env(SERVICES["monitor"])["MODELWATCH_STORE_URL"])
    ).path.lstrip("/")
    assert f"CREATE DATABASE {store_db}" in sql
    backend = interpolated(command_flag(SERVICES["mlflow"], "--backend-store-uri"))
    assert urlparse(backend).path.lstrip("/") == env["POSTGRES_DB"]
    assert any(m.kind == "volume" and m.target == "/var/lib/postgresql/data" for m in mounts(pg))


def test_mlflow_server_uses_postgres_and_serves_artifacts_from_a_volume():
    mlflow = SERVICES["mlflow"]
    command = _command(mlflow)
    assert command[:2] == ["mlflow", "server"]
    backend = urlparse(interpolated(command_flag(mlflow, "--backend-store-uri")))
    assert backend.scheme.startswith("postgresql") and backend.hostname == "postgres"
    assert "--serve-artifacts" in command
    artifacts = command_flag(mlflow, "--artifacts-destination")
    assert any(m.kind == "volume" and m.target == artifacts for m in mounts(mlflow))
    assert command_flag(mlflow, "--host") == "0.0.0.0" and command_flag(mlflow, "--port") == "5000"
    allowed = command_flag(mlflow, "--allowed-hosts").split(",")
    assert "mlflow" in allowed and "mlflow:*" in allowed, "other containers reach it as mlflow:5000"


def test_trainer_runs_the_mlflow_project_against_the_server():
    trainer = SERVICES["trainer"]
    assert _command(trainer) == ["mlflow", "run", ".", "--env-manager", "local"]
    assert _env(trainer)["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert (c.ROOT / "MLproject").is_file()


def test_serving_and_monitor_commands_and_environment():
    serving, monitor = SERVICES["serving"], SERVICES["monitor"]
    assert _command(serving)[:2] == ["modelwatch", "serve"]
    assert command_flag(serving, "--workers") == "2" and command_flag(serving, "--port") == "8000"
    assert serving["deploy"]["replicas"] == 2
    assert (
        _command(monitor)[:2] == ["modelwatch", "monitor"]
        and command_flag(monitor, "--port") == "8001"
    )
    for service in (serving, monitor):
        assert command_flag(service, "--host") == "0.0.0.0", "reachable from the other containers"
        env = _env(service)
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
        store = urlparse(interpolated(env["MODELWATCH_STORE_URL"]))
        assert store.scheme == "postgresql" and store.hostname == "postgres"
        assert (
            env["MODELWATCH_MODEL_NAME"] == "credit-default"
            and env["MODELWATCH_MODEL_ALIAS"] == "production"
        )


# The services that listen beyond loopback, and the tokens they refuse to start without.
LISTENERS = {"serving": SERVING_TOKENS, "monitor": MONITOR_TOKENS}


def _secret_files(service: dict) -> set[str]:
    """The files a service's secrets become in /run/secrets."""
    specs = [{"source": s} if isinstance(s, str) else s for s in service.get("secrets", [])]
    return {spec.get("target", spec["source"]) for spec in specs}


@pytest.mark.parametrize("name", sorted(LISTENERS))
def test_every_token_a_listener_needs_comes_from_a_secret(name):
    service = SERVICES[name]
    assert not is_loopback(command_flag(service, "--host")), (
        "this test is about a service others reach"
    )
    env = _env(service)
    assert env["MODELWATCH_SECRETS_DIR"] == "/run/secrets", "where compose mounts secrets"
    secrets = {s if isinstance(s, str) else s["source"]: s for s in service.get("secrets", [])}
    for variable in LISTENERS[name]:
        assert variable not in env, f"{name}: {variable} is given in the file, not as a secret"
        file = STACK_FILES[variable]
        assert file in secrets, f"{name} does not mount the secret {file} ({variable})"
        assert COMPOSE["secrets"][file] == {"environment": variable}
        assert secrets[file].get("mode") == 0o444, "readable by the image's unprivileged user"


@pytest.mark.parametrize("name", sorted(LISTENERS))
def test_a_listener_starts_with_its_mounted_secrets_and_refuses_without(name, tmp_path):
    """What `modelwatch serve` / `monitor` do with the service's environment: read the
    token files in MODELWATCH_SECRETS_DIR (here a directory standing for /run/secrets),
    then check the bind."""
    service = SERVICES[name]
    address = f"{command_flag(service, '--host')}:{command_flag(service, '--port')}"
    env = {**_env(service), "MODELWATCH_SECRETS_DIR": str(tmp_path)}
    with pytest.raises(ExposedWithoutTokens):
        check_exposure(name, [address], LISTENERS[name], dict(env))
    for file in _secret_files(service):
        (tmp_path / file).write_text(f"value of {file}\n")
    load_token_files(env)
    assert check_exposure(name, [address], LISTENERS[name], env) is None


def test_no_secret_is_hard_coded():
    text = c.COMPOSE_FILE.read_text()
    for var in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert f"${{{var}:?" in text, f"{var} must come from the environment, required"
    for var, file in STACK_FILES.items():  # the tokens: secrets from the environment
        assert COMPOSE["secrets"][file] == {"environment": var}
    for name, service in SERVICES.items():
        for key, value in _env(service).items():
            if re.search(r"PASSWORD|TOKEN", key):
                assert str(value).startswith("${"), f"{name}: {key} is hard-coded"


def test_gateway_balances_over_the_serving_replicas():
    gateway = SERVICES["gateway"]
    (conf,) = [m for m in mounts(gateway) if m.target == "/etc/nginx/nginx.conf"]
    text = repo_path(conf.source).read_text()
    assert "resolver 127.0.0.11" in text and "http://serving:8000" in text
    assert gateway["depends_on"]["serving"]["condition"] == "service_healthy"
