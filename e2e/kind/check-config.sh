#!/usr/bin/env bash
# Runs check-config.py [CONFIG] with a Python that has PyYAML and tomllib (3.11+).
# Tries the python3 on PATH, then Debian's; installs Debian's python3-yaml only when neither has
# PyYAML (CI starts from a fresh Debian 12, whose python3 is 3.11).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ok() { "$1" -c 'import tomllib, yaml' 2>/dev/null; }
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null && ok "$py"; then exec "$py" "$here/check-config.py" "$@"; fi
done
echo "[kind-config-check] installing python3-yaml" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-yaml >&2
exec /usr/bin/python3 "$here/check-config.py" "$@"
