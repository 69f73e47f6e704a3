#!/usr/bin/env bash
# Makes this machine ready for `make demo` and `make test`: apt prerequisites, PostgreSQL and
# MariaDB answering on 127.0.0.1, and .venv holding exactly the locked set (constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  if ! is_root; then
    say "missing system packages: $*"
    say "run: sudo apt-get install -y $* && make $*"
    exit 1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  }
}

# 1. System packages: mysqlclient builds from source; headless Chromium for the dashboard test;
#    PgBouncer for the connection-pooling test (started by the test itself); the servers
#    themselves when absent (Redis: the Celery test's broker).
missing=()
for pkg in pkg-config libmariadb-dev chromium pgbouncer; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
fresh_pg=0; fresh_maria=0
command -v pg_ctlcluster >/dev/null 2>&1 || { missing+=(postgresql postgresql-client); fresh_pg=1; }
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || { missing+=(mariadb-server mariadb-client); fresh_maria=1; }
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# 2. The servers answer on 127.0.0.1 (start them when installed but stopped).
pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
maria_up() { mariadb-admin -h 127.0.0.1 -P 3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 1; done; return 1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

if ! pg_up; then
  is_root || { say "PostgreSQL is not answering on 127.0.0.1:5432; start it (sudo pg_ctlcluster <version> main start)"; exit 1; }
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "$fresh_pg" = 1 ]; then
    # A server installed just now: let local loopback clients in as on the reference machine.
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL $ver"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_for pg_up || { say "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
fi
if ! maria_up; then
  is_root || { say "MariaDB is not answering on 127.0.0.1:3306; start it (sudo service mariadb start)"; exit 1; }
  say "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  if [ "$fresh_maria" = 1 ]; then
    sleep 3
    mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('')" || true
  fi
  wait_for maria_up || { say "MariaDB did not come up on 127.0.0.1:3306"; exit 1; }
fi
if ! redis_up; then
  is_root || { say "Redis is not answering on 127.0.0.1:6379; start it (sudo service redis-server start)"; exit 1; }
  say "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null
  wait_for redis_up || { say "Redis did not come up on 127.0.0.1:6379"; exit 1; }
fi

# 3. The virtual environment: exactly the lock, refreshed only when the lock changed.
if ! command -v uv >/dev/null 2>&1; then
  say "installing uv"
  python3 -m pip install -q uv
fi
if [ ! -x .venv/bin/python ]; then
  uv venv -q --python 3.11 .venv
fi
# Bytecode compiled at install, as pip does (uv does not by default): every Airflow task process
# imports Airflow, GX and SciPy, and without .pyc files (or where PYTHONDONTWRITEBYTECODE is set,
# as on this machine) compiles them from source each time, about 6 s per process.
stamp=.venv/.constraints.sha256
want="$(sha256sum constraints.txt | cut -d' ' -f1) bytecode"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "syncing .venv with constraints.txt"
  uv pip sync -q --compile-bytecode --python .venv/bin/python constraints.txt
  echo "$want" > "$stamp"
fi
# 4. The browser tests' driver: playwright-core from npm (locked), driving the system's Chromium
#    (/usr/bin/chromium, never a downloaded browser).
lock=tests/browser/package-lock.json
if [ ! -f tests/browser/node_modules/.lock.sha256 ] || [ "$(cat tests/browser/node_modules/.lock.sha256)" != "$(sha256sum $lock | cut -d' ' -f1)" ]; then
  say "installing playwright-core (tests/browser)"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  sha256sum $lock | cut -d' ' -f1 > tests/browser/node_modules/.lock.sha256
fi
say "ready"
