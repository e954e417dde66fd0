"""The environment an Airflow of the local stack (or of the DAG tests) runs with: where its home and DAGs are,
how many workers it may start, and the AWS connection and TRIPLAKE_* settings that point it at the local AWS."""

from __future__ import annotations

import json
from pathlib import Path

from triplake.settings import AWS_SERVICES, REPO_ROOT, Settings

DAGS_FOLDER = REPO_ROOT / "dags"
# airflow standalone's default spawns ~4 GiB of workers; four task slots are plenty for one pool slot of Spark.
PARALLELISM = 4


def aws_connection(settings: Settings) -> str:
    """The Airflow connection (JSON form of AIRFLOW_CONN_<ID>) of the configured AWS endpoint and credentials."""
    extra: dict = {"region_name": settings.aws_region}
    if settings.aws_endpoint_url:
        extra["endpoint_url"] = settings.aws_endpoint_url
    # The provider's hooks take one service's own endpoint from the connection's service_config.
    services = {service: settings.endpoint_url(service) for service in AWS_SERVICES}
    if own := {service: {"endpoint_url": url} for service, url in services.items() if url != settings.aws_endpoint_url}:
        extra["service_config"] = own
    connection: dict = {"conn_type": "aws", "extra": extra}
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        connection |= {"login": settings.aws_access_key_id, "password": settings.aws_secret_access_key}
    return json.dumps(connection)


def triplake_env(settings: Settings) -> dict[str, str]:
    """Settings as TRIPLAKE_* variables, so the DAG's get_settings() sees what this process sees."""
    env = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is not None and value != field.default:
            env[f"TRIPLAKE_{name.upper()}"] = str(value)
    return env


def airflow_env(settings: Settings, home: Path, api_port: int | None = None) -> dict[str, str]:
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        f"AIRFLOW_CONN_{settings.airflow_aws_conn_id.upper()}": aws_connection(settings),
        **triplake_env(settings),
    }
    if api_port is not None:
        env |= {"AIRFLOW__API__PORT": str(api_port), "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}"}
    return env
