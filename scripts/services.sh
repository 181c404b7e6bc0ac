#!/usr/bin/env bash
# Starts (installing PostgreSQL if needed) the servers the integration tests use, on 127.0.0.1 only,
# and writes their URLs to .cache/services/env for `source`. `services.sh stop` stops them.
#
# PostgreSQL runs as a private cluster (its own data directory, port 25432) rather than the machine's
# cluster: it needs no systemd, leaves the machine's own PostgreSQL and its config alone, and is the
# same everywhere. Wrong passwords are rejected: TCP connections use scram-sha-256, not trust.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD svc=$PWD/.cache/services
# Ports below Linux's ephemeral range (32768-60999), which a client socket could be holding.
pg_port=25432 ml_port=25000 user=gansweep pass=gansweep-test
pg_url=postgresql://$user:$pass@127.0.0.1:$pg_port
ml_url=http://127.0.0.1:$ml_port
mkdir -p "$svc"
# Two calls at once must not both initdb or start a server. The servers get `9>&-`, else they'd hold the lock.
exec 9>"$svc/lock" && flock 9

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
# postgres refuses to run as root; as anyone else it runs as that user.
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
su=$([ "$(id -u)" = 0 ] && echo postgres || id -un)   # the cluster's superuser, reached by peer auth
up() { .venv/bin/python -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)' "$ml_url/health" 2>/dev/null; }

# The cluster lives in the project, unless the postgres user cannot reach it (a clone under /root):
# then in postgres's home, one per project path.
pg_dir() {
  local d=$svc/pg
  mkdir -p -m 700 "$d"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$d"
    as_pg test -w "$d" || { d=~postgres/gansweep-$(echo "$root" | md5sum | cut -c1-8); as_pg mkdir -p -m 700 "$d"; }
  fi
  echo "$d"
}

stop_mlflow() {   # its whole process group (setsid below): the server, uvicorn and its workers
  [ -f "$svc/mlflow.pid" ] || return 0
  local g=-$(cat "$svc/mlflow.pid")
  if kill -- "$g" 2>/dev/null; then
    for _ in $(seq 40); do kill -0 -- "$g" 2>/dev/null || break; sleep 0.25; done
    kill -9 -- "$g" 2>/dev/null || true
  fi
  rm -f "$svc/mlflow.pid"
}

if [ "${1:-start}" = stop ]; then
  stop_mlflow
  if bin=$(pg_bin) && [ -n "$bin" ] && id postgres >/dev/null 2>&1; then
    d=$(pg_dir); [ ! -f "$d/data/postmaster.pid" ] || as_pg "$bin/pg_ctl" -D "$d/data" stop -m fast -s
  fi
  rm -f "$svc/env"; echo "services stopped"; exit 0
fi
rm -f "$svc/env"

# --- PostgreSQL ---
if [ -z "$(pg_bin)" ]; then
  if [ "$(id -u)" != 0 ]; then echo "services.sh: PostgreSQL is not installed and we are not root; tests that need it will skip" >&2; exit 0; fi
  echo "installing PostgreSQL (apt-get, a minute or two)..." >&2
  if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >"$svc/apt.log" 2>&1 </dev/null; then
    tail -30 "$svc/apt.log" >&2; echo "services.sh: installing PostgreSQL failed (log: $svc/apt.log)" >&2; exit 1
  fi
fi
bin=$(pg_bin) d=$(pg_dir)
if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
  [ -f "$d/data/PG_VERSION" ] ||
    as_pg "$bin/initdb" -D "$d/data" -U "$su" -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >"$d/initdb.log"
  # Options on the command line, not in postgresql.conf, so that changing them here is enough.
  as_pg "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 60 -s \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k /tmp" start 9>&- ||
    { tail -20 "$d/postgres.log" >&2; echo "services.sh: PostgreSQL did not start (log: $d/postgres.log)" >&2; exit 1; }
fi
as_pg "$bin/psql" -X -q -h /tmp -p "$pg_port" -U "$su" -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user')\gexec
ALTER ROLE $user LOGIN CREATEDB PASSWORD '$pass';
SELECT format('CREATE DATABASE %I OWNER $user', db) FROM unnest(ARRAY['$user', 'mlflow']) db
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db)\gexec
SQL

# --- MLflow tracking server; artifacts are proxied through it and stored in the project ---
if ! up; then
  .venv/bin/python -c 'import psycopg' 2>/dev/null || { echo "services.sh: .venv lacks psycopg; run scripts/setup.sh" >&2; exit 1; }
  stop_mlflow
  # No job execution: gansweep needs no server-side jobs, which would cost 7 huey processes (~250 MB each).
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid .venv/bin/mlflow server \
    --backend-store-uri "$pg_url/mlflow" --artifacts-destination "$svc/mlartifacts" \
    --host 127.0.0.1 --port "$ml_port" --workers 2 >"$svc/mlflow.log" 2>&1 </dev/null 9>&- &
  echo $! >"$svc/mlflow.pid"
  for _ in $(seq 90); do up && break; kill -0 "$(cat "$svc/mlflow.pid")" 2>/dev/null || break; sleep 1; done
  up || { tail -30 "$svc/mlflow.log" >&2; echo "services.sh: MLflow server did not answer $ml_url/health (log: $svc/mlflow.log)" >&2; exit 1; }
fi

printf 'export GANSWEEP_TEST_POSTGRES=%s\nexport GANSWEEP_TEST_MLFLOW=%s\n' "$pg_url/$user" "$ml_url" | tee "$svc/env"
