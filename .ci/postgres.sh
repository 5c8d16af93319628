#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the run-store tests (tests/test_store.py, tests/test_cli.py).
#
#   eval "$(bash .ci/postgres.sh)"
#
# Installs the Debian package when pg_ctl is missing, creates a cluster in a new directory
# under /tmp (trust auth, superuser "postgres"), starts it on 127.0.0.1 (port 5432, or a
# free port when 5432 is taken), waits for pg_isready, and prints
#   export RMBENCH_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:PORT/postgres
# as its only line on stdout (progress goes to stderr). It never fails: when PostgreSQL
# cannot be installed or started it prints a warning, no export line, and exits 0, and the
# PostgreSQL tests skip.
set -u

log() { echo "postgres.sh: $*" >&2; }
give_up() { log "warning: $* -- the PostgreSQL store tests will be skipped"; exit 0; }

PG_ROOT=${RMBENCH_PG_ROOT:-/usr/lib/postgresql}  # where Debian keeps /usr/lib/postgresql/<version>/bin

find_bin() {
    local d
    if command -v pg_ctl >/dev/null 2>&1; then
        d=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
        if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    fi
    for d in $(ls -d "$PG_ROOT"/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    done
    return 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1
    fi
}

# Run a server command as the "postgres" user when we are root (initdb refuses root), else as ourselves.
as_pg() {
    if [ "$(id -u)" != 0 ]; then "$@"
    elif command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
    else su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
    fi
}

if ! PGBIN=$(find_bin); then
    command -v apt-get >/dev/null 2>&1 || give_up "pg_ctl not found and apt-get is not available"
    as_root true 2>/dev/null || give_up "pg_ctl not found and no root (or sudo) to install postgresql"
    log "installing the postgresql package"
    TO=""; command -v timeout >/dev/null 2>&1 && TO="timeout 900"
    if ! as_root env DEBIAN_FRONTEND=noninteractive $TO apt-get install -y -q postgresql >&2; then
        as_root env DEBIAN_FRONTEND=noninteractive $TO apt-get update -q >&2
        as_root env DEBIAN_FRONTEND=noninteractive $TO apt-get install -y -q postgresql >&2 \
            || give_up "apt-get install postgresql failed"
    fi
    PGBIN=$(find_bin) || give_up "postgresql was installed but pg_ctl/initdb were not found under $PG_ROOT"
fi
log "using $PGBIN"

if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    give_up "running as root and there is no postgres user to run the server as"
fi

BASE=$(mktemp -d /tmp/rmbench-pg.XXXXXX) || give_up "could not create a directory under /tmp"
if [ "$(id -u)" = 0 ]; then chown postgres "$BASE" || give_up "could not hand $BASE to the postgres user"; fi
cd "$BASE" || give_up "could not enter $BASE"  # the postgres user may not be able to read our directory

if ! as_pg "$PGBIN/initdb" -D "$BASE/data" -U postgres --auth=trust --no-locale -E UTF8 --no-sync \
        >"$BASE/initdb.log" 2>&1; then
    tail -n 5 "$BASE/initdb.log" >&2
    give_up "initdb failed (log: $BASE/initdb.log)"
fi

PORT=""
if command -v python3 >/dev/null 2>&1; then
    PORT=$(python3 - <<'EOF'
import socket
for port in (5432, 0):  # 5432 if it is free, else any free port
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(s.getsockname()[1])
        break
    except OSError:
        pass
    finally:
        s.close()
EOF
    )
fi
PORT=${PORT:-5432}

if ! as_pg "$PGBIN/pg_ctl" -D "$BASE/data" -l "$BASE/server.log" -w -t 60 \
        -o "-k $BASE -p $PORT -c listen_addresses=127.0.0.1 -c fsync=off" start >&2; then
    tail -n 5 "$BASE/server.log" >&2 2>/dev/null
    give_up "the server did not start (log: $BASE/server.log)"
fi

for _ in $(seq 1 60); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 1
done
"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || give_up "pg_isready does not answer on 127.0.0.1:$PORT"

log "PostgreSQL is ready on 127.0.0.1:$PORT (data in $BASE/data; stop it with: $PGBIN/pg_ctl -D $BASE/data stop)"
echo "export RMBENCH_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PORT/postgres"
exit 0
