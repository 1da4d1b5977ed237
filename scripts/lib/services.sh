# Shared helpers of the scripts: the local services Facteur uses.

# Starts a local Redis when none answers on 127.0.0.1:6379.
ensure_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "Starting Redis"
    mkdir -p /tmp/facteur-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/facteur-redis --logfile /tmp/facteur-redis/redis.log
    for _ in $(seq 50); do
      redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    echo "Redis did not start" >&2
    return 1
  fi
}

# Prints a DATABASE_URL for the local PostgreSQL when one accepts connections.
postgres_available() {
  local url="${FACTEUR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  .venv/bin/python - "$url" <<'PY' >/dev/null 2>&1 || return 1
import sys
import psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
  echo "$url"
}
