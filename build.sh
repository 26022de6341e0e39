#!/usr/bin/env bash
# build.sh -- installs what is missing, builds postconn, then serves or tests.
#
#   ./build.sh serve   build the server alone, create the example postoffices
#                      under var/, and run `postconn serve` on conf/postconn.toml
#                      (Ctrl-C stops)
#   ./build.sh test    build and run every test (what CI runs)
#   ./build.sh build   build only
#
# Debian 12; packages come from apt-get (with sudo when not root). The build
# goes to build/ (BUILD_DIR overrides), with ccache when it is installed.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${BUILD_DIR:-build}
PACKAGES=(
  g++ cmake ninja-build ccache pkg-config python3 sqlite3
  libcaf-dev libspdlog-dev libfmt-dev doctest-dev libsqlite3-dev
  libtomlplusplus-dev libcli11-dev libcpp-httplib-dev nlohmann-json3-dev libssl-dev
)
# Real peers for the end-to-end tests.
TEST_PACKAGES=(swaks postfix dovecot-lmtpd python3-aiosmtpd python3-prometheus-client systemd
  # openssl makes the STARTTLS test's certificate; swaks --tls needs Net::SSLeay.
  openssl libnet-ssleay-perl
  # libFuzzer and the sanitizers for the fuzz smoke tests (fuzz/).
  clang-14 libclang-rt-14-dev
  # etcd for the etcd client's tests (each starts its own on free loopback ports).
  etcd-server
  # A real browser renders the admin listener's status page.
  chromium)

install_missing() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  echo "build.sh: installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build [TARGET...]: every target (tests, benchmarks, fuzzers) unless named.
build() {
  install_missing "${PACKAGES[@]}"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  local targets=()
  (($#)) && targets=(--target "$@")
  cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"
}

# Two example maildir postoffices, as conf/postconn.toml names them: each
# with its .postoffice marker and a few mailboxes.
create_example_postoffices() {
  local po mailbox
  for po in sales:alice:bob:orders support:carol:helpdesk; do
    IFS=: read -r -a parts <<<"$po"
    mkdir -p "var/postoffices/${parts[0]}"
    touch "var/postoffices/${parts[0]}/.postoffice"
    for mailbox in "${parts[@]:1}"; do
      mkdir -p "var/postoffices/${parts[0]}/$mailbox"/{tmp,new,cur}
    done
  done
}

case "${1:-}" in
  serve)
    build postconn # the server alone: no tests, benchmarks or fuzzers
    create_example_postoffices
    exec "$BUILD_DIR/postconn" serve --config conf/postconn.toml
    ;;
  test)
    install_missing "${TEST_PACKAGES[@]}"
    build
    cd "$BUILD_DIR"
    ctest --output-on-failure -j "$(nproc)"
    ;;
  build)
    build
    ;;
  *)
    echo "usage: $0 serve|test|build" >&2
    exit 2
    ;;
esac
