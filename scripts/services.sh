#!/usr/bin/env bash
# Make sure the real services the tests use are present and running. Idempotent; safe on a fresh
# machine of the project's kind (Debian, root). Each service gets its own section.
set -euo pipefail

# PostgreSQL 15 on 127.0.0.1:5432 (started before the session on this machine kind; start it if down).
if command -v pg_ctlcluster >/dev/null 2>&1; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi

# Prometheus (Debian package) for the rollout guard's tests: they start their own servers on free
# loopback ports with temporary configs, so only the binary is needed. Never start the system
# service here (policy-rc.d blocks the package's own start while installing).
if ! command -v prometheus >/dev/null 2>&1; then
  apt_log="$(mktemp)"
  own_policy_rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy_rc=1
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
    echo "services.sh: installing prometheus failed (the rollout tests need it)" >&2
    exit 1
  fi
  [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
  rm -f "$apt_log"
fi

# Prometheus Alertmanager (Debian package) for the incident webhook tests: they start their own
# Alertmanager on a free loopback port with a temporary config whose webhook receiver is the test
# server, so only the binary (/usr/bin/prometheus-alertmanager) is needed. Same rules as above:
# never start the system service.
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  apt_log="$(mktemp)"
  own_policy_rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy_rc=1
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
    echo "services.sh: installing prometheus-alertmanager failed (the incident webhook tests need it)" >&2
    exit 1
  fi
  [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
  rm -f "$apt_log"
fi

# Headless Chromium and its WebDriver (Debian `chromium`, `chromium-driver`): the report tests
# render the HTML report headless (`chromium --headless --screenshot … --print-to-pdf …`) and check
# the PNG and the PDF's pages; the dashboard's browser tests (crates/server/tests/dashboard_browser.rs)
# start their own chromedriver on a free loopback port. Only the binaries are needed, no service.
# fonts-dejavu-core gives the screenshots readable text. Same rules as above (policy-rc.d, quiet apt).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt_log="$(mktemp)"
  own_policy_rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy_rc=1
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
    echo "services.sh: installing chromium and chromium-driver failed (the report and dashboard browser tests need them)" >&2
    exit 1
  fi
  [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
  rm -f "$apt_log"
fi

# A real SMTP server for the e-mail notification tests: Debian's python3-aiosmtpd. The tests start
# their own `/usr/bin/python3 crates/server/tests/smtp_sink.py` (aiosmtpd, writing each message to a
# file) on a free loopback port, so only the module is needed; nothing runs as a service. Debian's
# interpreter, not whatever `python3` is first on PATH (a pyenv shim does not see Debian's modules).
# The STARTTLS test makes its CA and server certificate with the `openssl` command line.
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || ! command -v openssl >/dev/null; then
  apt_log="$(mktemp)"
  own_policy_rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy_rc=1
  fi
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-aiosmtpd openssl; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
    echo "services.sh: installing python3-aiosmtpd failed (the e-mail notification tests need it)" >&2
    exit 1
  fi
  [ "$own_policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
  rm -f "$apt_log"
fi
