#!/usr/bin/env bash
# Acceptance run of the original React storefront against our six services:
# export the client, build it, start the services, seed them, serve the build,
# drive it in chromium, stop everything. See README.md beside this file.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CLIENT_REPO=${CLIENT_REPO:-/work/.mirror/Aditya-PS-05+Ecommerce-Retail-HCL-Hackathon/repo}
CLIENT_DIR=${CLIENT_DIR:-/work/storefront-client}
SHOTS_DIR=${SHOTS_DIR:-/work/storefront-shots}
PORT_BASE=${PORT_BASE:-18000}   # services listen on PORT_BASE+1 .. PORT_BASE+6
WEB_PORT=${WEB_PORT:-13000}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
DRIVE_TIMEOUT=${DRIVE_TIMEOUT:-600}
ADMIN_EMAIL=${ADMIN_EMAIL:-boss@shop.test}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-change-me-now-42}
SERVICES=(auth products categories inventory orders search)

say() { printf '[storefront] %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

PIDS=()        # process-group leaders we started (setsid), stopped on exit
DATA_DIR=""
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [[ -n "$DATA_DIR" && -z "${KEEP_DATA:-}" ]]; then rm -rf "$DATA_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check_tools() {
  command -v node >/dev/null || die "node is missing (apt-get install -y nodejs npm)"
  command -v npm >/dev/null || die "npm is missing (apt-get install -y npm)"
  command -v uv >/dev/null || die "uv is missing"
  [[ -x "$CHROMIUM" ]] || die "$CHROMIUM is missing (apt-get install -y chromium)"
  [[ -d "$CLIENT_REPO" ]] || die "client snapshot $CLIENT_REPO is missing"
  local port
  for port in $(seq $((PORT_BASE + 1)) $((PORT_BASE + 6))) "$WEB_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is taken; set PORT_BASE / WEB_PORT"
    fi
  done
}

api_url() { # api_url SERVICE -> http://127.0.0.1:<port>
  local i
  for i in "${!SERVICES[@]}"; do
    [[ "${SERVICES[$i]}" == "$1" ]] && { echo "http://127.0.0.1:$((PORT_BASE + i + 1))"; return; }
  done
}

# The client is exported fresh whenever the snapshot's commit changes; its
# build is redone whenever the commit or the API addresses change.
build_client() {
  local commit stamp front
  commit=$(git -C "$CLIENT_REPO" rev-parse HEAD)
  front="$CLIENT_DIR/frontend"
  if [[ "$(cat "$front/.exported-commit" 2>/dev/null)" != "$commit" ]]; then
    say "exporting the client at $commit into $CLIENT_DIR"
    rm -rf "$front" && mkdir -p "$CLIENT_DIR"
    git -C "$CLIENT_REPO" archive "$commit" frontend | tar -x -C "$CLIENT_DIR"
    echo "$commit" >"$front/.exported-commit"
  fi
  if [[ ! -d "$front/node_modules" ]]; then
    # The client's lock file is out of step with its package.json, so `npm ci` refuses it.
    say "npm install in $front"
    (cd "$front" && timeout 600 npm install --no-audit --no-fund >"$SHOTS_DIR/npm-client.log" 2>&1) \
      || die "npm install failed: $SHOTS_DIR/npm-client.log"
  fi
  export REACT_APP_AUTH_API_URL=$(api_url auth)
  export REACT_APP_PRODUCTS_API_URL=$(api_url products)
  export REACT_APP_CATEGORIES_API_URL=$(api_url categories)
  export REACT_APP_INVENTORY_API_URL=$(api_url inventory)
  export REACT_APP_ORDERS_API_URL=$(api_url orders)
  export REACT_APP_API_URL="$(api_url products)/api"   # in .env only; no code reads it
  stamp="$commit $REACT_APP_AUTH_API_URL $REACT_APP_PRODUCTS_API_URL $REACT_APP_CATEGORIES_API_URL"
  stamp+=" $REACT_APP_INVENTORY_API_URL $REACT_APP_ORDERS_API_URL"
  if [[ "$(cat "$front/build/.stamp" 2>/dev/null)" != "$stamp" ]]; then
    say "npm run build"
    (cd "$front" && GENERATE_SOURCEMAP=false CI=false timeout 600 npm run build \
      >"$SHOTS_DIR/npm-build.log" 2>&1) || die "client build failed: $SHOTS_DIR/npm-build.log"
    echo "$stamp" >"$front/build/.stamp"
  fi
}

start_services() {
  local i name
  DATA_DIR=$(mktemp -d /tmp/storefront-data.XXXXXX)
  export DATA_DIR ADMIN_EMAIL ADMIN_PASSWORD
  export CORS_ORIGINS=${CORS_ORIGINS:-"http://127.0.0.1:$WEB_PORT,http://localhost:$WEB_PORT"}
  export LOG_LEVEL=${LOG_LEVEL:-WARNING}
  for i in "${!SERVICES[@]}"; do
    name=${SERVICES[$i]^^}
    export "${name}_PORT=$((PORT_BASE + i + 1))" "${name}_URL=$(api_url "${SERVICES[$i]}")"
  done
  say "starting the services (DATA_DIR=$DATA_DIR, log $SHOTS_DIR/services.log)"
  # setsid makes each child a process-group leader with the pid in $!, so the
  # cleanup can stop it and everything it spawned by that id alone.
  setsid bash -c 'cd "$1" && exec uv run --frozen retail up' _ "$ROOT" >"$SHOTS_DIR/services.log" 2>&1 &
  PIDS+=($!)
  for name in "${SERVICES[@]}"; do
    for i in $(seq 240); do
      curl -fsS -o /dev/null "$(api_url "$name")/ready" 2>/dev/null && break
      kill -0 -- "-${PIDS[0]}" 2>/dev/null || die "the services exited: $SHOTS_DIR/services.log"
      sleep 0.5
    done
    curl -fsS -o /dev/null "$(api_url "$name")/ready" || die "$name is not ready after 120 s"
  done
  say "seeding a catalogue through the API (log $SHOTS_DIR/seed.log)"
  AUTH_URL=$(api_url auth) CATEGORIES_URL=$(api_url categories) PRODUCTS_URL=$(api_url products) \
    timeout 120 node "$HERE/seed.mjs" >"$SHOTS_DIR/seed.log" 2>&1 || die "seeding failed: $SHOTS_DIR/seed.log"
}

serve_client() {
  setsid node "$HERE/serve.mjs" "$CLIENT_DIR/frontend/build" "$WEB_PORT" >"$SHOTS_DIR/serve.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 40); do curl -fs -o /dev/null "http://127.0.0.1:$WEB_PORT/" && return; sleep 0.25; done
  die "the static server did not start: $SHOTS_DIR/serve.log"
}

main() {
  mkdir -p "$SHOTS_DIR"
  check_tools
  [[ -d "$HERE/node_modules/puppeteer-core" ]] \
    || (cd "$HERE" && timeout 300 npm install --no-audit --no-fund >/dev/null) \
    || die "npm install of puppeteer-core failed"
  build_client
  start_services
  serve_client
  if [[ "${1:-}" == "--up" ]]; then
    say "storefront on http://127.0.0.1:$WEB_PORT, services on $((PORT_BASE + 1))..$((PORT_BASE + 6)); Ctrl-C stops"
    while :; do sleep 1; done
    return 0
  fi
  say "driving the storefront (screenshots and report in $SHOTS_DIR)"
  local rc=0
  WEB_URL="http://127.0.0.1:$WEB_PORT" API_PORTS="$(seq -s, $((PORT_BASE + 1)) $((PORT_BASE + 6)))" \
    AUTH_URL=$(api_url auth) PRODUCTS_URL=$(api_url products) CATEGORIES_URL=$(api_url categories) \
    INVENTORY_URL=$(api_url inventory) ORDERS_URL=$(api_url orders) SEARCH_URL=$(api_url search) \
    SHOTS_DIR="$SHOTS_DIR" CHROMIUM="$CHROMIUM" \
    setsid timeout "$DRIVE_TIMEOUT" node "$HERE/drive.mjs" &
  PIDS+=($!)   # its own group: the cleanup also stops a chromium that outlived node
  wait "$!" || rc=$?
  [[ $rc -eq 124 ]] && say "the drive did not finish within $DRIVE_TIMEOUT s"
  return "$rc"
}

main "$@"
