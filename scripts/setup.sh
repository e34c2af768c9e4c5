#!/usr/bin/env bash
# Installs what building and testing need, when it is missing: the wasm
# target and the standard library's source, Miri (nightly), wasm-bindgen-cli at exactly
# the wasm-bindgen crate's version,
# Chromium and ChromeDriver, Firefox ESR (Debian) and geckodriver (crates.io),
# Python's venv (Debian), and the npm packages of the package template.
# Reuses whatever is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# rust-src: scripts/build-pkg.sh builds the standard library for the wasm
# (smaller; see there).
for component in rustfmt clippy rust-src; do
  rustup component list --installed | grep -q "^$component" || rustup component add "$component"
done
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# Miri on the nightly toolchain: the test command runs the wire crate's
# table-driven decoder (unsafe) under it. Without a nightly, the newest one
# that has Miri. Not for the demos (SKIP_MIRI=1), which do not need it.
if [ "${SKIP_MIRI:-}" != 1 ]; then
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src --allow-downgrade
  fi
  for component in miri rust-src; do
    rustup component list --toolchain nightly --installed | grep -q "^$component" \
      || rustup component add --toolchain nightly "$component" \
      || rustup toolchain install nightly --profile minimal --component miri,rust-src --allow-downgrade
  done
  # Miri's own standard library, built once here rather than inside a test run.
  cargo +nightly miri setup >/dev/null
fi

bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  # --locked fails for some versions against the registry copy; plain works.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked \
    || cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

if [ "${SKIP_BROWSER:-}" != 1 ] && { ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null \
  || ! command -v firefox-esr >/dev/null; }; then
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends chromium chromium-driver firefox-esr
fi
# The driver for Firefox comes from crates.io (compiled once, about 2-4
# minutes on 2 cores): the npm package and Mozilla's releases download a
# binary, which cannot work on a machine that reaches only the registries.
geckodriver_version=0.37.1
if [ "${SKIP_BROWSER:-}" != 1 ] \
  && [ "$(geckodriver --version 2>/dev/null | awk 'NR == 1 { print $2 }')" != "$geckodriver_version" ]; then
  cargo install geckodriver --version "$geckodriver_version" --locked
fi

# PostgreSQL for the scale-out suites, which start their own servers in
# temporary directories (no service is started or assumed).
if [ "${SKIP_POSTGRES:-}" != 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends postgresql postgresql-client
fi
if [ "${SKIP_POSTGRES:-}" != 1 ] && [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
fi

# Python's venv, into which scripts/schemathesis.sh installs schemathesis
# once (Debian ships it apart from python3).
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt_get() { if [ "$(id -u)" = 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends python3-venv
fi

if ! command -v npm >/dev/null; then
  echo "npm is needed (Node.js 20 or later)" >&2
  exit 1
fi
if [ ! -d pkg-template/node_modules ] || [ pkg-template/package-lock.json -nt pkg-template/node_modules/.package-lock.json ]; then
  (cd pkg-template && npm ci --no-audit --no-fund)
fi
