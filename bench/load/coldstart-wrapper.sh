#!/usr/bin/env bash
# One cold start for hyperfine (bench/load/run.sh): exec the server on PORT, poll the service map
# with curl until 200, SIGKILL it and wait. Measures exec -> first 200 plus the wrapper's own
# costs (bash, one curl exec per poll, kill + wait); loadbench.py's socket loop is the precise one.
# usage: coldstart-wrapper.sh SERVER_BINARY PORT MANIFEST   (env: CONNECTORS_SIGNATURE_KEY,
#        CONNECTORS_API_KEY, LOG_LEVEL as for the server)
set -u
server=$1 port=$2 manifest=$3
"$server" --port "$port" --manifest "$manifest" >/dev/null 2>&1 &
pid=$!
deadline=$((SECONDS + 10))
until curl -s -o /dev/null -f --max-time 2 -H "Authorization: Bearer $CONNECTORS_API_KEY" \
    "http://127.0.0.1:$port/v1/connectors/service-map"; do
  if ((SECONDS >= deadline)) || ! kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 1
  fi
done
kill -KILL "$pid"
wait "$pid" 2>/dev/null
exit 0
