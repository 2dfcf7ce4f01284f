#!/usr/bin/env bash
# Install the Debian packages placesense's local stack needs, if they are missing.
# Used by `make setup` (and so by `make demo`, `make test`, `make bench`). Safe to run again.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The tests run the relational suites on PostgreSQL too, started as a process of their own (tests/conftest.py).
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
# Headless browser tests (tests/pages) and `make screenshots`: Debian's Chromium and its ChromeDriver.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# The sign-in tests (tests/oidc) run a real OpenID Connect provider, panva's oidc-provider, on Node.js.
command -v node >/dev/null 2>&1 || need+=(nodejs)
# The browser tests install axe-core (pinned in tests/pages/package-lock.json) with npm; oidc-provider too.
command -v npm >/dev/null 2>&1 || need+=(npm)
dpkg -s fonts-liberation >/dev/null 2>&1 || need+=(fonts-liberation)  # Arial's metrics; only recommended
for extra in ${PLACESENSE_EXTRA_DEBS:-}; do
  dpkg -s "$extra" >/dev/null 2>&1 || need+=("$extra")
done

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "placesense: installing Debian packages: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "placesense: need root to install ${need[*]}. Ask your administrator to run:" >&2
  echo "  apt-get update && apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d stops the packages' own services from starting: placesense runs its own copies under var/.
if [ -d /usr/sbin ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "placesense: installed ${need[*]}"
