#!/usr/bin/env bash
# Start the machine's PostgreSQL, Redis and RabbitMQ if they are installed but down (distributed mode and its
# tests use them). Silent when they already run; a warning, not a failure, when one is not installed.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! port_open 6379 && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! port_open 5672 && command -v rabbitmq-server >/dev/null; then
  rabbitmq-server -detached || true
  for _ in $(seq 1 60); do port_open 5672 && break; sleep 1; done
fi
for port in 5432 6379 5672; do
  port_open "$port" || echo "warning: nothing listens on 127.0.0.1:$port" >&2
done
exit 0
