#!/usr/bin/env bash
# Latency of a live system from a bar's commit in PostgreSQL to its recorded order
# (p50/p99 over a session of 390 one-minute bars), and ingest throughput, for 40
# assets (the real minute bars of ../shared/data/us_equity_1min_2018) and 500
# assets (synthetic bars). Needs root (scripts/postgres-up runs the server as the
# postgres user); prints the figures docs/benchmarks.md quotes.
#
#   benches/live_latency.sh [SPEED]     (bars fed per wall second x 60; default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
speed="${1:-600}"
scripts/postgres-up >/dev/null
cargo build --release -q -p kaizenflow --features postgres
K=target/release/kaizenflow
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
session="$(date -u -d tomorrow +%Y-%m-%d)"

one() { # NAME SOURCE_CONFIG LIVE_CONFIG HISTORY_START HISTORY_END DAY_START DAY_END
  local name=$1 src=$2 cfg=$3
  echo "== $name"
  $K ingest "$src" --to "$cfg" --start "$4" --end "$5" --shift-to today --speed 0 --fresh
  $K ingest "$src" --to "$cfg" --start "$6" --end "$7" --shift-to tomorrow --speed "$speed" \
    > "$tmp/$name.ingest" &
  local feed=$!
  $K live "$cfg" --out "$tmp/$name" --set "system.start=\"$session $8\"" \
    --set "system.end=\"$session $9\"" | grep -E '^# live'
  wait $feed
  cat "$tmp/$name.ingest"
  $K reconcile "$tmp/$name"
}

# 40 assets: the repository's live config on the real data.
sed 's/table = "us_equity_1min"/table = "bench_live_40"/' configs/live_us_equity_1min_2018.toml \
  > "$tmp/live40.toml"
one real40 configs/mock1_system_us_equity_1min_2018.toml "$tmp/live40.toml" \
  "2018-04-19 13:31" "2018-04-19 20:00" "2018-04-20 13:31" "2018-04-20 20:00" 13:31 20:00

# 500 assets: two synthetic US-equity days (January: EST, like December's).
cat > "$tmp/syn500.toml" <<TOML
[market_data]
type = "synthetic"
assets = 500
bars = 780
start = "2024-01-02 09:31"
tz = "America/New_York"
calendar = "us_equity"
TOML
assets=$(python3 -c 'print(", ".join("\"A%04d\"" % i for i in range(500)))')
sed -e 's/table = "us_equity_1min"/table = "bench_live_500"/' \
    -e "s/^assets = .*/assets = [$assets]/" \
    -e '/^tz = "UTC"/d' -e '/^start_time = /d' -e '/^end_time = /d' \
    configs/live_us_equity_1min_2018.toml > "$tmp/live500.toml"
one syn500 "$tmp/syn500.toml" "$tmp/live500.toml" \
  "2024-01-02 14:31" "2024-01-02 21:00" "2024-01-03 14:31" "2024-01-03 21:00" 14:31 21:00

echo "== bulk ingest (a session per transaction)"
$K ingest configs/mock1_system_us_equity_1min_2018.toml --to "$tmp/live40.toml" --speed 0 \
  --batch 390 --fresh --shift-to today
$K ingest "$tmp/syn500.toml" --to "$tmp/live500.toml" --speed 0 --batch 390 --fresh \
  --shift-to today
