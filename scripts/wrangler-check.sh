#!/usr/bin/env bash
# Real wrangler, offline: the config validates and lists every binding in every environment, and
# the D1 migrations apply on workerd's own SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export WRANGLER_SEND_METRICS=false CI=true

expect_bindings() {  # $1 = env flag value, rest = expected binding names
  local env="$1"; shift
  local out
  out="$(npx --no-install wrangler deploy --dry-run --outdir "$scratch/out" --env="$env" 2>&1)" || {
    echo "$out"; echo "wrangler deploy --dry-run failed (env '$env')"; exit 1; }
  for binding in "$@"; do
    grep -q "env\.$binding\b" <<<"$out" || { echo "$out"; echo "missing binding $binding (env '$env')"; exit 1; }
  done
  # The dashboard's static assets (public/, with the vendored files from `make assets`).
  grep -qE "Read [0-9]+ files from the assets directory" <<<"$out" || {
    echo "$out"; echo "no static assets listed (env '$env')"; exit 1; }
  grep -q "public/vendor" <<<"$(ls -d public/vendor 2>/dev/null)" || { echo "run make assets first"; exit 1; }
  echo "wrangler deploy --dry-run --env='$env': ok ($*; $(grep -oE "Read [0-9]+ files" <<<"$out" | head -1) of assets)"
}

bindings=(ASSETS DB RATE_LIMITER SERVER_REGISTRY SERVER_INSTANCE TASK_MANAGER JOB_RUNNER SWARMS BROWSER_TEST_RUNS BROWSER_LIMITS WORKER_HEALTH WORKER_ROLLOUTS FLEET_WATCH CUSTOMERS ARTIFACTS ENVIRONMENT CORS_ORIGINS PUBLIC_URL BACKEND_BASE CUSTOMER_DOMAIN)
expect_bindings "" "${bindings[@]}"
# Every module under src/ must be in the bundle Cloudflare would run.
missing="$(cd src && find . -name '*.py' -not -path '*/__pycache__/*' | while read -r f; do
  [ -f "$scratch/out/$f" ] || echo "$f"; done)"
[ -z "$missing" ] || { echo "not bundled by wrangler: $missing"; exit 1; }
echo "bundle: every src/ module present"
expect_bindings staging "${bindings[@]}"
expect_bindings production "${bindings[@]}"

out="$(npx --no-install wrangler d1 migrations apply DB --local --persist-to "$scratch/state" 2>&1)" || {
  echo "$out"; echo "wrangler d1 migrations apply failed"; exit 1; }
for migration in migrations/*.sql; do
  grep -q "$(basename "$migration")" <<<"$out" || { echo "$out"; echo "not applied: $migration"; exit 1; }
done
echo "wrangler d1 migrations apply DB --local: ok ($(ls migrations/*.sql | wc -l) migrations)"
