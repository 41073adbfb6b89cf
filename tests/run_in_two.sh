#!/usr/bin/env bash
# `make test`: the whole suite as two pytest processes at once, the end-to-end layer beside the rest
# (unit, interface, and the end-to-end modules marked other_half).
#
# Most of an end-to-end test's time is waiting (processes starting, events crossing the broker), so on two
# cores the halves overlap well: about half the wall time of one process. Two processes rather than
# pytest-xdist, which hangs under eventlet. They share nothing but the servers, where each makes its own
# vhosts and databases (uniquely named), as two developers' runs on one machine would.
#
# The other half prints as it goes; the end-to-end half writes var/test-logs/e2e.log, printed whole when
# both are done, then one line each. Arguments go to both pytest processes (make test ARGS="-x").
set -uo pipefail
cd "$(dirname "$0")/.."
logs=var/test-logs
mkdir -p "$logs"

# First, alone: the one test that stops a shared server's component (RabbitMQ's management plugin, which both
# halves use to make their vhosts).
.venv/bin/pytest tests/test_provision.py "$@"
alone=$?

# A few long end-to-end modules (marked other_half: the short soak, the fuzz) go with the other half.
.venv/bin/pytest -m "e2e and not other_half" --deselect tests/test_provision.py --durations=25 "$@" >"$logs/e2e.log" 2>&1 &
e2e_pid=$!
trap 'kill "$e2e_pid" 2>/dev/null' INT TERM

.venv/bin/pytest -m "not e2e or other_half" --deselect tests/test_provision.py --durations=25 "$@" 2>&1 | tee "$logs/services.log"
rest=${PIPESTATUS[0]}
wait "$e2e_pid"
e2e=$?

printf '\n== the end-to-end half (%s/e2e.log)\n' "$logs"
cat "$logs/e2e.log"
printf '\n== both halves\n'
printf 'provision (alone):  exit %s\nunit and interface: %s\nend to end:         %s\n' "$alone" \
  "$(grep -aE '^=+ .*(passed|failed|error).* in ' "$logs/services.log" | tail -n1)" \
  "$(grep -aE '^=+ .*(passed|failed|error).* in ' "$logs/e2e.log" | tail -n1)"
# pytest's own codes: 0 all passed, 1 some failed, 2+ interrupted or broken; the worse of the two counts
worst=$(( rest > e2e ? rest : e2e ))
exit $(( alone > worst ? alone : worst ))
