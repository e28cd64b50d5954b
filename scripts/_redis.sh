# Sourced by scripts/test: the shared-state tests run a real redis-server (Debian's package),
# which the suite starts and stops itself on a loopback port. Install it when it is missing.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server (for the shared-state tests)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq redis-server >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq redis-server >/dev/null; }
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server is needed by the tests and could not be installed; install it" \
         "(Debian/Ubuntu: apt-get install redis-server) and run again" >&2
    exit 1
  fi
fi
