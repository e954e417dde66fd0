"""Writes constraints.txt from a `pip install --dry-run --report` of requirements.txt: every package of the resolve,
pinned, so a fresh clone installs exactly what the tests ran with (`make constraints`)."""

from __future__ import annotations

import datetime
import json
import platform
import sys


def main(report_path: str) -> None:
    with open(report_path, encoding="utf-8") as report:
        packages = json.load(report)["install"]
    pins = sorted((f"{item['metadata']['name'].lower()}=={item['metadata']['version']}" for item in packages))
    today = datetime.date.today().isoformat()
    print(f"# Every package of the resolve of requirements.txt (pip install --dry-run --report, {today}, "
          f"Python {platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}).")
    print("# Regenerate with: make constraints")
    print("\n".join(pins))


if __name__ == "__main__":
    main(sys.argv[1])
