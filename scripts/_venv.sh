# Sourced by scripts/run and scripts/test: create .venv and install the pinned requirements
# (again only when a requirements file changed). Needs only Python 3.11+; no root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Hotline needs Python 3.11 or newer")'
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
hotline_install() {  # $1: requirements file
  local stamp=".venv/.installed-$(basename "$1")"
  local want
  want=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing $1 into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$1"
    echo "$want" > "$stamp"
  fi
}
