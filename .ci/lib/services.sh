#!/usr/bin/env bash
# Makes PostgreSQL and Redis available on their default local ports: uses a running server,
# starts an installed but stopped one, or installs it with apt-get when it is missing.
# ensure_chromium installs headless Chromium and chromedriver for the browser tests.
# Also creates the `kilowatt` database role the default DATABASE_URL uses.
# Sourced by .ci/serve and .ci/test.

set -euo pipefail

KW_PG_HOST=127.0.0.1
KW_PG_PORT=5432
KW_REDIS_PORT=6379

log() { printf '[kilowatt] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root (or sudo) to run: $*"; return 1
    fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() {
    local host=$1 port=$2 name=$3
    for _ in $(seq 1 60); do
        port_open "$host" "$port" && return 0
        sleep 0.5
    done
    log "$name did not start listening on $host:$port"
    return 1
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${KW_APT_UPDATED:-}" ]; then
        as_root apt-get update -qq
        KW_APT_UPDATED=1
    fi
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_postgres() {
    if ! port_open "$KW_PG_HOST" "$KW_PG_PORT"; then
        if ! command -v pg_lsclusters >/dev/null || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
            log "PostgreSQL is not installed: installing it with apt-get"
            apt_install postgresql postgresql-contrib
        fi
        local version cluster
        read -r version cluster _ < <(pg_lsclusters -h | head -n 1)
        log "starting PostgreSQL $version/$cluster"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start || true
        wait_for_port "$KW_PG_HOST" "$KW_PG_PORT" PostgreSQL
    fi
    command -v psql >/dev/null || apt_install postgresql-client
    # The default DATABASE_URL logs in as kilowatt/kilowatt and may create databases.
    if ! PGPASSWORD=kilowatt PGCONNECT_TIMEOUT=5 psql -h "$KW_PG_HOST" -p "$KW_PG_PORT" -U kilowatt -d postgres \
        -tAc 'SELECT 1' >/dev/null 2>&1; then
        log "creating the PostgreSQL role 'kilowatt'"
        local sql="DO \$\$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kilowatt') THEN
                CREATE ROLE kilowatt LOGIN CREATEDB PASSWORD 'kilowatt';
            ELSE
                ALTER ROLE kilowatt LOGIN CREATEDB PASSWORD 'kilowatt';
            END IF;
        END \$\$;"
        if id postgres >/dev/null 2>&1 && command -v runuser >/dev/null && [ "$(id -u)" -eq 0 ]; then
            runuser -u postgres -- psql -q -p "$KW_PG_PORT" -d postgres -c "$sql"
        elif id postgres >/dev/null 2>&1 && command -v sudo >/dev/null; then
            sudo -u postgres psql -q -p "$KW_PG_PORT" -d postgres -c "$sql"
        else
            psql -q -h "$KW_PG_HOST" -p "$KW_PG_PORT" -U postgres -d postgres -c "$sql"
        fi
    fi
}

ensure_redis() {
    port_open 127.0.0.1 "$KW_REDIS_PORT" && return 0
    if ! command -v redis-server >/dev/null; then
        log "Redis is not installed: installing it with apt-get"
        apt_install redis-server
    fi
    port_open 127.0.0.1 "$KW_REDIS_PORT" && return 0
    log "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 --port "$KW_REDIS_PORT" --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/kilowatt.log
    wait_for_port 127.0.0.1 "$KW_REDIS_PORT" Redis
}

# The browser tests (tests/web.rs) drive Debian's Chromium through chromedriver.
ensure_chromium() {
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
        log "Chromium or chromedriver is not installed: installing them with apt-get"
        apt_install chromium chromium-driver
    fi
    export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
}
