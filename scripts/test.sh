#!/usr/bin/env bash
# The whole test suite: formatting, lints (benchmarks included), every test
# and doc test.
# It installs what it needs when missing, so it passes on a new machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need_component() {
  # rustfmt and clippy ship with the machine's toolchain; rustup can add them
  # where the distribution server is reachable.
  if ! cargo "$1" --version >/dev/null 2>&1; then
    step "installing $2"
    rustup component add "$2"
  fi
}
need_component fmt rustfmt
need_component clippy clippy

need_package() {
  # Tests run the real tools (promtool, a Prometheus server) from Debian.
  if ! command -v "$1" >/dev/null 2>&1; then
    step "installing Debian package $2 (for $1)"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y --no-install-recommends "$2" \
      || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "$2"; }
  fi
}
need_package promtool prometheus
need_package prometheus prometheus
need_package prometheus-alertmanager prometheus-alertmanager
need_package amtool prometheus-alertmanager
need_package chromium chromium

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One build per run: incremental artifacts would only take disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-0}"

step "monitoring/: promtool and amtool on the shipped configuration"
promtool check config monitoring/prometheus/prometheus.yml
promtool check rules --lint=all --lint-fatal monitoring/prometheus/rules/observe.rules.yml
(cd monitoring/prometheus/tests && promtool test rules ./*.yml)
amtool check-config monitoring/alertmanager/alertmanager.yml
for severity in critical warning info; do
  printf '%s -> ' "$severity"
  amtool config routes test --config.file=monitoring/alertmanager/alertmanager.yml \
    "severity=$severity" alertname=HighErrorRate service=vk-parser 2>/dev/null
done

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc --workspace --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo test --workspace"
cargo test --workspace --locked
