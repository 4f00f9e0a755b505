#!/usr/bin/env bash
# The whole test suite from a fresh Debian/Ubuntu machine: servers, format, lints, every test.
# README's second set-up command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/servers.sh start
# shellcheck disable=SC1091
source "${GATEHOUSE_TEST_STATE:-/tmp/gatehouse-test-servers}/env"
export CI="${CI:-}"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets --no-fail-fast -- --test-threads=2
