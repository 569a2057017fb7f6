#!/usr/bin/env bash
# Starts a local three-node Sluice cluster for trying it out, and stops it
# on Ctrl-C.
#
#   scripts/cluster.sh [BASE_DIR]
#
# Node N listens for Kafka clients on 127.0.0.1:N9092, for HTTP on
# 127.0.0.1:N8080 and for the other nodes on 127.0.0.1:N9093; its data and
# log are under BASE_DIR/nodeN (default /tmp/sluice-cluster). Any node's
# Kafka listener works as the bootstrap server:
#
#   kcat -b 127.0.0.1:19092 -L
#   sluice cluster status --controller 127.0.0.1:19093
set -euo pipefail
BIN=${SLUICE_BIN:-target/release/sluice}
BASE=${1:-/tmp/sluice-cluster}
VOTERS="1@127.0.0.1:19093,2@127.0.0.1:29093,3@127.0.0.1:39093"
mkdir -p "$BASE"
pids=()
for id in 1 2 3; do
  mkdir -p "$BASE/node$id"
  SLUICE_NODE_ID=$id \
  SLUICE_DATA_DIR="$BASE/node$id" \
  SLUICE_KAFKA_LISTENER="127.0.0.1:${id}9092" \
  SLUICE_HTTP_LISTENER="127.0.0.1:${id}8080" \
  SLUICE_CONTROLLER_LISTENER="127.0.0.1:${id}9093" \
  SLUICE_CLUSTER_VOTERS="$VOTERS" \
    "$BIN" serve >"$BASE/node$id.log" 2>&1 &
  pids+=($!)
  echo "node $id: kafka 127.0.0.1:${id}9092, http 127.0.0.1:${id}8080, log $BASE/node$id.log"
done
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
wait
