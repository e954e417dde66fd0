# triplake's Airflow image: Airflow 3.3 with Java 17 for Spark local mode, the pinned requirements, the package
# and the S3A connector jars. docker-compose.yml runs it as API server, scheduler, DAG processor and triggerer.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17 \
    && mkdir -p /opt/triplake && chown airflow:root /opt/triplake
ENV JAVA_HOME=/usr/lib/jvm/java-17 \
    SPARK_LOCAL_IP=127.0.0.1 \
    TRIPLAKE_JARS_DIR=/opt/triplake/jars

USER airflow
WORKDIR /opt/triplake
# Requirements first: this layer is rebuilt only when the pins change, not with every code change.
COPY --chown=airflow:root requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY --chown=airflow:root pyproject.toml ./
COPY --chown=airflow:root triplake ./triplake
COPY --chown=airflow:root spark_jobs ./spark_jobs
COPY --chown=airflow:root sql ./sql
COPY --chown=airflow:root dags ./dags
RUN pip install --no-cache-dir --no-deps -e . \
    && python -m triplake.jars

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/triplake/dags
