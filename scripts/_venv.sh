# Sourced by the scripts: create .venv if needed and install the project with the extras named
# in $EXTRAS (default: dev, i.e. everything plus the test tools).
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-dev}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$EXTRAS-$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[$EXTRAS]"
  touch "$stamp"
fi
