#!/usr/bin/env bash
# Fails with a message a person can act on when Python 3.11 or Java 17 is missing.
# Prints the Python interpreter to use on success.
set -euo pipefail

python=""
for candidate in "${PYTHON:-}" python3.11 python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 \
     && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    python=$(command -v "$candidate")
    break
  fi
done
if [ -z "$python" ]; then
  echo "triplake needs Python 3.11 (pyspark 3.5 and Airflow 3 are pinned for it)." >&2
  echo "Install it (e.g. 'apt-get install python3.11 python3.11-venv' or pyenv) or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

if ! command -v java >/dev/null 2>&1; then
  echo "triplake needs Java 17 for Spark, and 'java' is not on PATH." >&2
  echo "Install it (e.g. 'apt-get install openjdk-17-jre-headless') or put its bin/ on PATH / set JAVA_HOME." >&2
  exit 1
fi
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
if [ "$java_major" != "17" ]; then
  echo "triplake needs Java 17 for Spark 3.5; 'java -version' reports ${java_major:-unknown}." >&2
  echo "Install openjdk-17 and put it first on PATH (or set JAVA_HOME)." >&2
  exit 1
fi

echo "$python"
