#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: installs what is missing, type-checks,
# lints, then runs every jest test (the jest global setup starts the services it needs). `npm test`.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO_ROOT"

bash services/app.sh deps
bash services/stack.sh install
echo "==> type-check"
npx tsc --noEmit -p tsconfig.json
echo "==> lint"
npx eslint .
echo "==> tests"
# Services that this run starts (none were running) are stopped again at the end.
if bash services/stack.sh status | grep -qE '^(temporal|kafka|postgres|mailpit) +running'; then started_here=false; else started_here=true; fi
results=.stack/test-results.json
mkdir -p .stack
rm -f "$results"
status=0
npx jest --json --outputFile="$results" "$@" || status=$?
if [[ -f $results ]]; then
  # shellcheck disable=SC2016 # the JavaScript is meant to be single-quoted
  node -e '
    const r = require(process.argv[1]);
    console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
    if (r.numTotalTests === 0) { console.log("no test ran"); process.exitCode = 1; }
  ' "$REPO_ROOT/$results" || status=1
else
  echo "jest wrote no results"
  status=1
fi
if [[ $started_here == true ]]; then
  echo "==> stopping the services this run started"
  bash services/stack.sh stop >/dev/null
fi
exit "$status"
