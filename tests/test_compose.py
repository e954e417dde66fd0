"""docker-compose.yml and the Dockerfile (no Docker engine here: they are checked as files): the services a stack
needs, ports only on the loopback, and an environment that is the one Settings and the local stack use."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any
from urllib.parse import urlparse

import yaml

from triplake.local.airflow_env import aws_connection
from triplake.local.stack import LOCAL_CREDENTIALS, LOCAL_LAKE_ROOT
from triplake.settings import REPO_ROOT, Settings

AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
MOTO_ACCOUNT = "123456789012"  # the account id moto serves by default
DEFAULT_INTERPOLATION = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def interpolated(value: Any) -> str:
    """The value docker compose uses when none of the ${NAME:-default} variables is set."""
    return DEFAULT_INTERPOLATION.sub(lambda match: match.group(1), str(value))


def environment(service: str) -> dict[str, str]:
    return {name: interpolated(value) for name, value in compose()["services"][service]["environment"].items()}


def settings_of(env: dict[str, str]) -> Settings:
    fields = {f"TRIPLAKE_{name.upper()}": name for name in Settings.model_fields}
    unknown = sorted(name for name in env if name.startswith("TRIPLAKE_") and name not in fields)
    assert not unknown, f"not settings: {unknown}"
    values = {fields[name]: value for name, value in env.items() if name in fields}
    return Settings.model_validate(values | {name: env[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                                         "AWS_DEFAULT_REGION") if name in env})


def requirement_pin(package: str) -> str:
    pins = dict(re.findall(r"^([A-Za-z0-9_.\[\]-]+)==([^\s#]+)", (REPO_ROOT / "requirements.txt").read_text(), re.M))
    return pins[package]


def test_the_stack_has_local_aws_bootstrap_airflow_components_and_a_localstack_profile():
    services = compose()["services"]
    assert set(services) >= {"postgres", "moto", "localstack", "bootstrap", "airflow-init", *AIRFLOW_SERVICES}
    assert services["localstack"]["profiles"] == ["localstack"]
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES}
    assert commands == {"airflow-apiserver": ["api-server"], "airflow-scheduler": ["scheduler"],
                        "airflow-dag-processor": ["dag-processor"], "airflow-triggerer": ["triggerer"]}
    for name in AIRFLOW_SERVICES:
        assert services[name]["image"] == "triplake-airflow:local"
        assert services[name]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["bootstrap"]["command"] == ["python", "-m", "triplake.local.bootstrap"]


def test_ports_are_published_on_the_loopback_only():
    published = [port for service in compose()["services"].values() for port in service.get("ports", [])]
    assert published, "nothing published: the Airflow UI and the local AWS must be reachable from the host"
    assert all(port.startswith("127.0.0.1:") for port in published), published
    assert "127.0.0.1:8080:8080" in compose()["services"]["airflow-apiserver"]["ports"]


def test_airflow_and_bootstrap_see_the_settings_of_the_local_stack():
    defaults = {name: field.default for name, field in Settings.model_fields.items()}
    for service in (*AIRFLOW_SERVICES, "bootstrap", "airflow-init"):
        settings = settings_of(environment(service))
        for name in ("landing_bucket", "landing_prefix", "landing_queue_name", "status_topic_name", "glue_database",
                     "athena_workgroup", "airflow_aws_conn_id"):
            assert getattr(settings, name) == defaults[name], (service, name)
        assert settings.lake_root == LOCAL_LAKE_ROOT, service
        assert (settings.aws_access_key_id, settings.aws_secret_access_key) == tuple(LOCAL_CREDENTIALS.values())
        assert settings.spark_runner == "local"


def test_the_endpoint_queue_url_and_connection_point_at_the_moto_service():
    moto = compose()["services"]["moto"]
    host_port, container_port = moto["ports"][0].rsplit(":", 2)[1:]
    assert moto["image"] == f"motoserver/moto:{requirement_pin('moto[server]')}"  # the moto the tests run
    for service in AIRFLOW_SERVICES:
        env = environment(service)
        settings = settings_of(env)
        endpoint = urlparse(settings.aws_endpoint_url)
        assert (endpoint.hostname, str(endpoint.port)) == ("moto", container_port), service
        assert settings.landing_queue_url == f"{settings.aws_endpoint_url}/{MOTO_ACCOUNT}/{settings.landing_queue_name}"
        connection = env[f"AIRFLOW_CONN_{settings.airflow_aws_conn_id.upper()}"]
        assert json.loads(connection) == json.loads(aws_connection(settings)), service
    assert host_port == container_port


def test_airflow_init_migrates_the_database():
    assert compose()["services"]["airflow-init"]["command"] == ["airflow db migrate"]


def test_the_image_is_the_pinned_airflow_with_java_17_the_requirements_and_the_jars():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert f"FROM apache/airflow:{requirement_pin('apache-airflow')}-python3.11\n" in dockerfile
    assert "openjdk-17-jre-headless" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt -c constraints.txt" in dockerfile
    assert "python -m triplake.jars" in dockerfile
    copied = set(re.findall(r"^COPY --chown=airflow:root (\S+) ", dockerfile, re.M))
    assert copied >= {"triplake", "spark_jobs", "sql", "dags"}
