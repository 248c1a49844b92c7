"""deploy/kubernetes: every overlay renders (`kubectl kustomize`), every object validates
against a pinned Kubernetes (kubernetes-validate, offline), and the manifests agree with
the code they run: ports, paths, environment variables and file names."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import PurePosixPath
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from modelwatch.tokens import MONITOR_TOKENS, SERVING_TOKENS, ExposedWithoutTokens, check_exposure
from tests.stack_config import contract as c
from tests.stack_config.compose import command_flag, load_compose, published_ports

KUBECTL = shutil.which("kubectl")
KUBERNETES_VERSION = "1.32.0"
DEPLOY = c.ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())
SECRET = "modelwatch-secrets"
PUBLIC = {"serving", "grafana"}  # the only pods reachable from outside the namespace
APP_IMAGE = {"serving", "monitor", "mlflow"}
SECRET_PLACEHOLDER = "secret"
# kubectl apply keeps the whole object in an annotation, which may not exceed this.
LAST_APPLIED_LIMIT = 262144


# --- the rendered overlays -----------------------------------------------------------------


@functools.cache
def _render(overlay: str) -> tuple[list[dict], str]:
    """(objects, error) of `kubectl kustomize`; every test reads the same objects (never
    change them)."""
    result = subprocess.run(
        [KUBECTL, "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        return [], result.stderr
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(result.stdout, Loader=loader) if doc], ""


def rendered(overlay: str) -> list[dict]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    docs, error = _render(overlay)
    assert not error, f"kubectl kustomize {overlay}: {error}"
    return docs


def objects(overlay: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


def unhashed(name: str) -> str:
    """A generated ConfigMap's name as the manifests write it (kustomize appends a hash)."""
    return name.rsplit("-", 1)[0]


def config_map(overlay: str, name: str) -> dict[str, str]:
    (found,) = [o for n, o in objects(overlay, "ConfigMap").items() if unhashed(n) == name]
    return found["data"]


def pod(overlay: str, name: str) -> dict:
    return objects(overlay, "Deployment")[name]["spec"]["template"]["spec"]


def container(overlay: str, name: str) -> dict:
    (only,) = pod(overlay, name)["containers"]
    return only


def container_env(overlay: str, name: str) -> dict[str, str]:
    """The container's environment as the pod would get it; Secret values are a placeholder."""
    spec = container(overlay, name)
    env = {}
    for source in spec.get("envFrom", []):
        env.update(config_map(overlay, unhashed(source["configMapRef"]["name"])))
    for var in spec.get("env", []):
        ref = var.get("valueFrom", {})
        if "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[var["name"]] = config_map(overlay, unhashed(key["name"]))[key["key"]]
        elif "secretKeyRef" in ref:
            env[var["name"]] = SECRET_PLACEHOLDER
        else:
            env[var["name"]] = var["value"]
    return env


def port_number(overlay: str, deployment: str, port) -> int:
    """A container port given by number or by name."""
    if isinstance(port, int):
        return port
    (number,) = [
        p["containerPort"] for p in container(overlay, deployment)["ports"] if p["name"] == port
    ]
    return number


def service_port(overlay: str, host: str) -> tuple[int, int]:
    """(Service port, container port it reaches) of the Service `host`, which has one."""
    service = objects(overlay, "Service")[host]
    (port,) = service["spec"]["ports"]
    target = service["spec"]["selector"]["app.kubernetes.io/name"]
    return port["port"], port_number(overlay, target, port["targetPort"])


def mounted_file(overlay: str, deployment: str, path: str) -> tuple[str, str]:
    """(ConfigMap or Secret, key) of the file a container sees at `path`; a ConfigMap's
    key must be there."""
    volumes = {v["name"]: v for v in pod(overlay, deployment)["volumes"]}
    for mount in container(overlay, deployment)["volumeMounts"]:
        if PurePosixPath(path).parent == PurePosixPath(mount["mountPath"]):
            volume = volumes[mount["name"]]
            name = PurePosixPath(path).name
            if "configMap" in volume:
                source = unhashed(volume["configMap"]["name"])
                assert name in config_map(overlay, source), f"{deployment}: {source} has no {name}"
                return source, name
            items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
            return volume["secret"]["secretName"], items[name]
    raise AssertionError(f"{deployment}: nothing is mounted at {path}")


def arg(container_spec: dict, name: str) -> str:
    """The value of `--name value` or `--name=value` in a container's command or args."""
    return command_flag({"command": container_spec.get("command") or container_spec["args"]}, name)


# --- render and validate ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_whole_platform(overlay):
    deployments = set(objects(overlay, "Deployment"))
    assert {
        "serving",
        "monitor",
        "mlflow",
        "prometheus",
        "alertmanager",
        "pushgateway",
        "grafana",
    } <= deployments
    assert set(objects(overlay, "HorizontalPodAutoscaler")) == {"serving"}
    assert set(objects(overlay, "PodDisruptionBudget")) == {"serving"}
    assert {
        o["metadata"].get("namespace") for o in rendered(overlay) if o["kind"] != "Namespace"
    } == {"modelwatch"}


def test_the_dev_overlay_brings_its_own_postgres_and_production_does_not():
    assert "postgres" in objects("dev", "Deployment")
    assert "postgres" not in objects("production", "Deployment")
    pg = container("dev", "postgres")
    assert mounted_file("dev", "postgres", "/docker-entrypoint-initdb.d/init-modelwatch.sql") == (
        "postgres-init",
        "init-modelwatch.sql",
    )
    assert "CREATE DATABASE modelwatch" in config_map("dev", "postgres-init")["init-modelwatch.sql"]
    env = {v["name"]: v for v in pg["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": SECRET,
        "key": "postgres-password",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_pinned_kubernetes(overlay):
    errors = []
    for obj in rendered(overlay):
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {exc.message}")
        assert len(json.dumps(obj)) < LAST_APPLIED_LIMIT, f"{name} is too big for kubectl apply"
    assert not errors, "\n".join(errors)


def test_the_validator_rejects_what_kubernetes_would():
    broken = json.loads(json.dumps(objects("dev", "Deployment")["serving"]))
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {"cpu": "1"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# --- files taken from monitoring/ -----------------------------------------------------------


def _generator():
    spec = importlib.util.spec_from_file_location("k8s_generate", DEPLOY / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_what_generate_py_writes():
    generator = _generator()
    expected = generator.outputs()
    present = {p for d in generator.config_maps() for p in d.rglob("*") if p.is_file()}
    assert present == set(expected), (
        "run `make k8s`: generated/ does not hold one copy per original"
    )
    stale = [
        str(path.relative_to(c.ROOT))
        for path, content in expected.items()
        if path.read_bytes() != content
    ]
    assert not stale, f"run `make k8s`: {stale} differ from their originals"


def test_config_maps_carry_every_rule_file_and_dashboard():
    rules = config_map("dev", "prometheus-rules")
    assert set(rules) == {p.name for p in c.rule_files()}, "run `make k8s`"
    for path in c.rule_files():
        assert rules[path.name] == path.read_text(), f"run `make k8s`: {path.name} differs"
    dashboards = config_map("dev", "grafana-dashboards")
    assert set(dashboards) == {p.name for p in (c.GRAFANA_DIR / "dashboards").glob("*.json")}, (
        "run `make k8s`"
    )
    assert (
        config_map("dev", "alertmanager-config")["alertmanager.yml"]
        == (c.ALERTMANAGER_DIR / "alertmanager.compose.yml").read_text()
    )


# --- secrets ------------------------------------------------------------------------------


def _secret_refs(overlay: str) -> set[str]:
    keys = set()
    for deployment in objects(overlay, "Deployment").values():
        spec = deployment["spec"]["template"]["spec"]
        for cont in spec["containers"]:
            assert not any("secretRef" in s for s in cont.get("envFrom", [])), (
                "name each secret key"
            )
            for var in cont.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == SECRET
                    keys.add(ref["key"])
                elif re.search(r"PASSWORD|TOKEN|SECRET", var["name"]):
                    raise AssertionError(f"{var['name']} is written into the manifest")
                elif re.search(r"://[^/\s]*:[^/\s]*@", str(var.get("value", ""))):
                    raise AssertionError(f"{var['name']} holds a URL with a password")
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] == SECRET
                keys |= {i["key"] for i in volume["secret"]["items"]}
    return keys


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_embedded(overlay):
    assert not objects(overlay, "Secret"), "a Secret in the manifests would be a secret in git"
    for data in (o["data"] for o in objects(overlay, "ConfigMap").values()):
        for key, value in data.items():
            assert not re.search(r"://[^/\s]*:[^/\s]*@", value), (
                f"ConfigMap key {key} holds a password"
            )
    # README.md's commands for the overlay create the Secret with every key it reads
    section = (c.ROOT / "README.md").read_text().split("\n## Kubernetes", 1)[1].split("\n## ", 1)[0]
    (block,) = [
        b for b in re.findall(r"```\n(.*?)```", section, re.S) if f"overlays/{overlay}" in b
    ]
    assert f"create secret generic {SECRET}" in block
    assert _secret_refs(overlay) == set(re.findall(r"--from-literal=([a-z-]+)=", block))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("name, tokens", [("serving", SERVING_TOKENS), ("monitor", MONITOR_TOKENS)])
def test_every_token_a_listener_needs_comes_from_the_secret(overlay, name, tokens):
    """They listen on 0.0.0.0: without these tokens they would refuse to start."""
    cont = container(overlay, name)
    address = f"{arg(cont, '--host')}:{arg(cont, '--port')}"
    refs = {
        var["name"]: var.get("valueFrom", {}).get("secretKeyRef") for var in cont.get("env", [])
    }
    for variable in tokens:
        assert refs.get(variable), f"{name}: {variable} is not taken from a Secret"
        assert refs[variable]["name"] == SECRET and not refs[variable].get("optional")
    env = container_env(overlay, name)  # Secret values: a placeholder
    assert check_exposure(name, [address], tokens, env) is None
    with pytest.raises(ExposedWithoutTokens):
        check_exposure(name, [address], tokens, {k: v for k, v in env.items() if k != tokens[-1]})


# --- the workloads --------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resources_probes_and_a_pinned_image(overlay):
    for name, deployment in objects(overlay, "Deployment").items():
        cont = container(overlay, name)
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(cont.get("resources", {}).get(kind, {})), (
                f"{name}: {kind}"
            )
        assert cont.get("readinessProbe") and cont.get("livenessProbe"), name
        repo, _, tag = cont["image"].rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), (
            f"{name}: {cont['image']}"
        )
        security = cont.get("securityContext", {})
        assert security.get("allowPrivilegeEscalation") is False, name
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"], name
        # nothing calls the Kubernetes API; and the token's mount would land in
        # Alertmanager's /run/secrets
        assert spec["automountServiceAccountToken"] is False, name
    assert len({container(overlay, n)["image"] for n in APP_IMAGE}) == 1, "one application image"


def _parse_cli(command: list[str]):
    from modelwatch.cli import build_parser

    assert command[0] == "modelwatch", command
    return build_parser().parse_args(command[1:])


@pytest.mark.parametrize("name, command", [("serving", "serve"), ("monitor", "monitor")])
def test_modelwatch_commands_listen_where_the_manifests_say(name, command):
    cont = container("dev", name)
    assert cont["command"][:2] == ["modelwatch", command]
    args = _parse_cli(cont["command"])
    assert args.host == "0.0.0.0", "reachable from the other pods"
    (port,) = cont["ports"]
    assert args.port == port["containerPort"]
    assert service_port("dev", name)[1] == args.port


def test_mlflow_server_command_and_its_environment():
    from mlflow.cli import server

    cont = container("dev", "mlflow")
    command = cont["command"]
    assert command[:2] == ["mlflow", "server"] and "--serve-artifacts" in command
    options = {opt: p for p in server.params for opt in p.opts}
    for word in command[2:]:
        if word.startswith("--"):
            assert word in options, f"mlflow server has no option {word}"
    assert (
        int(arg(cont, "--port")) == cont["ports"][0]["containerPort"]
        and arg(cont, "--host") == "0.0.0.0"
    )
    envvars = {p.envvar for p in server.params if p.envvar}
    for var in container_env("dev", "mlflow"):
        assert var in envvars, f"mlflow server does not read {var}"
    allowed = arg(cont, "--allowed-hosts").split(",")
    host = urlparse(container_env("dev", "serving")["MLFLOW_TRACKING_URI"])
    assert host.hostname in allowed and f"{host.hostname}:*" in allowed
    assert (host.hostname, host.port) == ("mlflow", service_port("dev", "mlflow")[0])
    assert container_env("dev", "mlflow")["MLFLOW_ARTIFACTS_DESTINATION"] == "/mlartifacts"
    mounts = {m["mountPath"] for m in cont["volumeMounts"]}
    assert "/mlartifacts" in mounts
    assert container_env("production", "mlflow")["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> dict[str, set[str]]:
    """The URL rules of the serving app and of the monitor, built without starting them."""
    from modelwatch.monitoring.service.app import create_app as monitor_app
    from modelwatch.monitoring.service.config import MonitorConfig
    from modelwatch.serving.app import create_app as serving_app
    from modelwatch.serving.app import shutdown_app

    store = f"sqlite:///{tmp_path_factory.mktemp('routes') / 'p.db'}"
    serving = serving_app({"background": False, "store_url": store})
    config = MonitorConfig.from_env(store_url=store, log_to_mlflow=False)
    monitor = monitor_app(config, runner=lambda reason: "promoted", start=False)
    shutdown_app(serving)
    return {
        name: {r.rule for r in app.url_map.iter_rules()}
        for name, app in (("serving", serving), ("monitor", monitor))
    }


def test_probe_paths_are_routes_of_the_apps(routes):
    from mlflow.server.security_utils import HEALTH_ENDPOINTS

    for name, rules in routes.items():
        cont = container("dev", name)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in cont:
                assert cont[probe]["httpGet"]["path"] in rules, f"{name} {probe}"
    assert container("dev", "serving")["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container("dev", "serving")["livenessProbe"]["httpGet"]["path"] == "/health"
    # MLflow's /health answers whatever Host the kubelet sends (--allowed-hosts)
    assert container("dev", "mlflow")["readinessProbe"]["httpGet"]["path"] in HEALTH_ENDPOINTS


def _as_in_the_pod(monkeypatch, name: str) -> None:
    """This process's environment as the container's: its variables, and none of ours."""
    for var in os.environ:
        if var.startswith(("MODELWATCH_", "MLFLOW_")):
            monkeypatch.delenv(var)
    for var, value in container_env("dev", name).items():
        monkeypatch.setenv(var, value)


def test_serving_and_monitor_environment_is_what_their_config_reads(monkeypatch):
    from modelwatch.monitoring.service.config import MonitorConfig
    from modelwatch.serving.config import Config

    from modelwatch.settings import GUNICORN, MONITOR, SERVING, SETTINGS

    # modelwatch's variables by their readers in modelwatch/settings.py; others (OMP_*) by name
    read_by = {
        "serving": (
            (SERVING, GUNICORN),
            [c.ROOT / "serving" / "config.py", c.ROOT / "serving" / "gunicorn.conf.py"],
        ),
        "monitor": ((MONITOR,), [c.ROOT / "monitoring" / "service" / "config.py"]),
    }
    for name, (readers, files) in read_by.items():
        code = "".join(f.read_text() for f in files)
        for var in container_env("dev", name):
            if var in SETTINGS:
                assert set(SETTINGS[var].readers) & set(readers), f"{name}: nothing reads {var}"
            else:
                assert f'"{var}"' in code, f"{name}: nothing reads {var}"
    serving = Config.from_env(container_env("dev", "serving"))
    _as_in_the_pod(monkeypatch, "monitor")
    monitor = MonitorConfig.from_env()
    assert (serving.model_name, serving.model_alias) == (monitor.model_name, monitor.model_alias)
    assert serving.tracking_uri == monitor.tracking_uri
    assert serving.store_url == monitor.store_url == SECRET_PLACEHOLDER, "both from the Secret"


def test_serving_drains_within_the_grace_period(monkeypatch, tmp_path):
    """preStop + gunicorn's graceful_timeout (as this environment sets it) fit in the grace period."""
    _as_in_the_pod(monkeypatch, "serving")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn = runpy.run_path(str(c.ROOT / "serving" / "gunicorn.conf.py"))
    pre_stop = container("dev", "serving")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = pod("dev", "serving")["terminationGracePeriodSeconds"]
    assert int(pre_stop[1]) + gunicorn["graceful_timeout"] < grace
    assert int(pre_stop[1]) >= 5, "the endpoints need a few seconds to drop the pod"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_scales_and_survives_a_drain(overlay):
    deployment = objects(overlay, "Deployment")["serving"]
    hpa = objects(overlay, "HorizontalPodAutoscaler")["serving"]["spec"]
    pdb = objects(overlay, "PodDisruptionBudget")["serving"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "serving",
    }
    assert "replicas" not in deployment["spec"], "the autoscaler owns the count"
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert pdb["minAvailable"] < hpa["minReplicas"], "a node drain must be able to evict one"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_exactly_one_monitor(overlay):
    spec = objects(overlay, "Deployment")["monitor"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    targets = [
        h["spec"]["scaleTargetRef"]["name"]
        for h in objects(overlay, "HorizontalPodAutoscaler").values()
    ]
    assert "monitor" not in targets


def test_service_ports_are_the_compose_ports():
    compose = load_compose()["services"]
    text = c.COMPOSE_FILE.read_text()
    for name, _service in objects("dev", "Service").items():
        if name not in compose:
            continue
        # what compose publishes or exposes, or else the port its URLs call it by
        expected = {int(p) for _, _, p in published_ports(compose[name])} | {
            int(p) for p in compose[name].get("expose", [])
        } or {int(p) for p in re.findall(rf"[@/]{name}:(\d+)", text)}
        assert service_port("dev", name)[0] in expected, name


# --- Prometheus, Alertmanager, Grafana ------------------------------------------------------


def _host_port(target: str) -> tuple[str, int]:
    host, port = target.rsplit(":", 1)
    return host, int(port)


def test_prometheus_scrapes_every_service_by_the_jobs_the_rules_name():
    config = yaml.safe_load(config_map("dev", "prometheus-config")["prometheus.yml"])
    compose = c.load_yaml(c.PROMETHEUS_DIR / "prometheus.compose.yml")
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {j["job_name"] for j in compose["scrape_configs"]}
    for job in jobs.values():
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = _host_port(target)
                if host != "localhost":
                    assert service_port("dev", host)[0] == port, f"{job['job_name']}: {target}"
    (sd,) = jobs["serving"]["dns_sd_configs"]
    (headless,) = sd["names"]
    service = objects("dev", "Service")[headless]
    assert service["spec"]["clusterIP"] == "None", "one A record per replica"
    assert service["spec"]["selector"] == objects("dev", "Service")["serving"]["spec"]["selector"]
    assert sd["port"] == service_port("dev", headless)[1]
    (am,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert service_port("dev", _host_port(am)[0])[0] == _host_port(am)[1]


def test_prometheus_loads_its_config_and_every_rule_file():
    prometheus = container("dev", "prometheus")
    config_path = arg(prometheus, "--config.file")
    assert mounted_file("dev", "prometheus", config_path) == ("prometheus-config", "prometheus.yml")
    config = yaml.safe_load(config_map("dev", "prometheus-config")["prometheus.yml"])
    rules = config_map("dev", "prometheus-rules")
    (rules_dir,) = {str(PurePosixPath(p).parent) for p in config["rule_files"]}
    assert {mounted_file("dev", "prometheus", f"{rules_dir}/{key}") for key in rules} == {
        ("prometheus-rules", key) for key in rules
    }
    loaded = {
        key
        for key in rules
        for pattern in config["rule_files"]
        if PurePosixPath(rules_dir, key).match(pattern)
    }
    assert loaded == set(rules)
    port = arg(prometheus, "--web.listen-address").rsplit(":", 1)[1]
    assert int(port) == prometheus["ports"][0]["containerPort"]
    assert arg(prometheus, "--storage.tsdb.path") in {
        m["mountPath"] for m in prometheus["volumeMounts"]
    }


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian package `prometheus`)",
)
def test_promtool_checks_the_config_with_the_rules_the_pod_gets(tmp_path):
    config = yaml.safe_load(config_map("dev", "prometheus-config")["prometheus.yml"])
    rules = config_map("dev", "prometheus-rules")
    (tmp_path / "rules").mkdir()
    for key, text in rules.items():
        (tmp_path / "rules" / key).write_text(text)
    # the pod's paths, moved under tmp_path
    config["rule_files"] = [
        str(tmp_path / "rules" / PurePosixPath(p).name) for p in config["rule_files"]
    ]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [shutil.which("promtool"), "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rule files found" in result.stdout


def test_alertmanager_delivers_retrain_alerts_to_the_monitor_with_its_token(routes):
    alertmanager = container("dev", "alertmanager")
    assert mounted_file("dev", "alertmanager", arg(alertmanager, "--config.file")) == (
        "alertmanager-config",
        "alertmanager.yml",
    )
    config = yaml.safe_load(config_map("dev", "alertmanager-config")["alertmanager.yml"])
    monitor_env = {v["name"]: v for v in container("dev", "monitor")["env"]}
    token_key = monitor_env["MODELWATCH_WEBHOOK_TOKEN"]["valueFrom"]["secretKeyRef"]["key"]
    hooks = [w for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert hooks
    for hook in hooks:
        url = urlparse(hook["url"])
        assert service_port("dev", url.hostname)[0] == url.port and url.path in routes[url.hostname]
        credentials = hook["http_config"]["authorization"]["credentials_file"]
        assert mounted_file("dev", "alertmanager", credentials) == (SECRET, token_key), (
            "the monitor's own token"
        )
    assert "--cluster.listen-address=" in alertmanager["args"]
    port = arg(alertmanager, "--web.listen-address").rsplit(":", 1)[1]
    assert int(port) == alertmanager["ports"][0]["containerPort"]


def test_grafana_provisions_the_datasource_and_the_dashboards():
    datasources = yaml.safe_load(config_map("dev", "grafana-datasources")["prometheus.yml"])
    url = urlparse(datasources["datasources"][0]["url"])
    assert service_port("dev", url.hostname)[0] == url.port
    assert (
        mounted_file("dev", "grafana", "/etc/grafana/provisioning/datasources/prometheus.yml")[0]
        == "grafana-datasources"
    )
    assert (
        mounted_file("dev", "grafana", "/etc/grafana/provisioning/dashboards/dashboards.yml")[0]
        == "grafana-dashboard-providers"
    )
    providers = yaml.safe_load(config_map("dev", "grafana-dashboard-providers")["dashboards.yml"])
    path = providers["providers"][0]["options"]["path"]
    for key in config_map("dev", "grafana-dashboards"):
        assert mounted_file("dev", "grafana", f"{path}/{key}") == ("grafana-dashboards", key)
    home = container_env("dev", "grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert mounted_file("dev", "grafana", home)[0] == "grafana-dashboards"


# --- the network ------------------------------------------------------------------------------


def _admits_outside(rule: dict) -> bool:
    """Whether an ingress rule lets in traffic from outside the namespace's own pods."""
    sources = rule.get("from")
    return not sources or any("ipBlock" in s or "namespaceSelector" in s for s in sources)


def _selects(selector: dict, labels: dict) -> bool:
    assert not selector.get("matchExpressions"), "keep the selectors to matchLabels"
    return selector.get("matchLabels", {}).items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_serving_and_grafana_are_reachable_from_outside(overlay):
    policies = objects(overlay, "NetworkPolicy").values()
    assert any(
        p["spec"]["podSelector"] == {}
        and p["spec"]["policyTypes"] == ["Ingress"]
        and not p["spec"].get("ingress")
        for p in policies
    ), "no default deny"
    for name, deployment in objects(overlay, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        outside = [
            r
            for p in policies
            if _selects(p["spec"]["podSelector"], labels)
            for r in p["spec"].get("ingress", [])
            if _admits_outside(r)
        ]
        if name not in PUBLIC:
            assert not outside, f"{name} is reachable from outside"
            continue
        ports = {port_number(overlay, name, p["port"]) for r in outside for p in r.get("ports", [])}
        assert outside and all(r.get("ports") for r in outside), f"{name}: open on its port only"
        assert ports == {service_port(overlay, name)[1]}
    exposed = {
        n
        for n, s in objects(overlay, "Service").items()
        if s["spec"].get("type", "ClusterIP") != "ClusterIP"
    }
    assert exposed <= PUBLIC


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_stack_reaches_its_own_pods(overlay):
    """Every pod carries the label the in-namespace allow rule selects its peers by."""
    policies = objects(overlay, "NetworkPolicy").values()
    peers = [
        s["podSelector"]
        for p in policies
        for r in p["spec"].get("ingress", [])
        for s in r.get("from", [])
        if set(s) == {"podSelector"}
    ]
    assert peers
    for name, deployment in objects(overlay, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(_selects(peer, labels) for peer in peers), f"{name} cannot reach the stack"
