# Starts a throw-away PostgreSQL cluster on 127.0.0.1 for tests and exports
# MAMORI_TEST_POSTGRES_URL. Source it, then call start_postgres / stop_postgres.
# Usable by hand too:  source .ci/postgres.sh && start_postgres

start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_BIN=$bin
  PG_PORT=${PG_PORT:-55432}
  # Skip ports something else (another cluster, another run) is listening on.
  while (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null; do PG_PORT=$((PG_PORT + 1)); done
  PGDATA_DIR=$(mktemp -d /tmp/mamori-pg.XXXXXX)
  as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
  }
  [ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR"
  as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -A trust -U mamori -E UTF8 >/dev/null
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDATA_DIR -c fsync=off -c max_connections=300" start >/dev/null
  export MAMORI_TEST_POSTGRES_URL="postgres://mamori@127.0.0.1:$PG_PORT/postgres"
}

stop_postgres() {
  if [ -n "${PGDATA_DIR:-}" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA_DIR"
  fi
}
