#!/usr/bin/env bash
# The body of action.yml's check step (a file, so tests run exactly what the action runs).
# Inputs arrive as environment variables, never spliced into the script text.
set -uo pipefail
set -f  # kvplan expands quoted globs itself; the shell must not
args=()
[ -n "${KVPLAN_POLICY:-}" ] && args+=(--policy "$KVPLAN_POLICY")
[ "${KVPLAN_STRICT:-false}" = "true" ] && args+=(--strict)
[ -n "${KVPLAN_BASELINE:-}" ] && args+=(--baseline "$KVPLAN_BASELINE")
read -r -a paths <<< "${KVPLAN_PATHS:-}"
paths=("${paths[@]//\'/}")  # paths: "'models/**/config.json'" -> models/**/config.json
kvplan check ${paths[@]+"${paths[@]}"} ${args[@]+"${args[@]}"} --format "${KVPLAN_FORMAT:-github}"
code=$?
if [ "${KVPLAN_SUMMARY:-true}" = "true" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ "$code" -ne 2 ]; then
  kvplan check ${paths[@]+"${paths[@]}"} ${args[@]+"${args[@]}"} --format markdown >> "$GITHUB_STEP_SUMMARY"
fi
[ -n "${GITHUB_OUTPUT:-}" ] && echo "exit-code=$code" >> "$GITHUB_OUTPUT"
exit "$code"
