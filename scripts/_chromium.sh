# Sourced by scripts/test: the browser tests (pytest -m browser) drive Debian's headless
# chromium through its chromedriver with Selenium. Install both when missing, the way
# _redis.sh installs redis-server.
if ! command -v chromium >/dev/null 2>&1 || ! [ -x /usr/bin/chromedriver ]; then
  echo "== installing chromium and chromium-driver (for the browser tests)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
      || { $SUDO apt-get update -qq >/dev/null \
           && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }
  fi
  if ! command -v chromium >/dev/null 2>&1 || ! [ -x /usr/bin/chromedriver ]; then
    echo "chromium and chromedriver are needed by the browser tests and could not be" \
         "installed; install them (Debian/Ubuntu: apt-get install chromium chromium-driver)" \
         "and run again" >&2
    exit 1
  fi
fi
# Selenium must never download a driver or a browser: it uses the distro's.
export SE_OFFLINE=true
