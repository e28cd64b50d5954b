# Sourced by scripts/test-future: libfaketime (Debian's faketime package) moves the clock of a
# process and its children. Install it when it is missing.
if ! command -v faketime >/dev/null 2>&1; then
  echo "== installing faketime (for the tests one year ahead)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq faketime >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq faketime >/dev/null; }
  fi
  if ! command -v faketime >/dev/null 2>&1; then
    echo "faketime is needed by scripts/test-future and could not be installed; install it" \
         "(Debian/Ubuntu: apt-get install faketime) and run again" >&2
    exit 1
  fi
fi
