#!/usr/bin/env bash
# Installs moto's standalone server (moto_server) from PyPI into
# third_party/moto-venv, for the SageMaker tests of sagemaker/ (make deps-aws).
# Running it again is a no-op once the pinned version is installed; a run that
# failed half way is completed by the next one.
set -euo pipefail

MOTO_VERSION=${MOTO_VERSION:-5.2.5}
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/third_party/moto-venv"
py=${PYTHON:-python3}

installed() {
  [ -x "$venv/bin/moto_server" ] &&
    [ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" = "$MOTO_VERSION" ]
}
installed && exit 0

mkdir -p "$root/third_party"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
echo "fetch-moto: installing moto[server]==$MOTO_VERSION into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
installed || { echo "fetch-moto: moto_server $MOTO_VERSION is not in $venv after pip install" >&2; exit 1; }
echo "fetch-moto: $venv/bin/moto_server (moto $MOTO_VERSION)" >&2
