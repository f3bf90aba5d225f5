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
