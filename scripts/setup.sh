#!/usr/bin/env bash
# One entry point for a fresh Debian / Raspberry Pi OS machine (run as root, or with the
# system packages already installed):
#   scripts/setup.sh demo [serve args]   install, load the demo orders, run the edge service
#   scripts/setup.sh test [pytest args]  install, run ruff and the whole test suite
#   scripts/setup.sh install             install only (system packages + .venv)
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the product needs at run time: zbar for pyzbar, Tesseract 5 with English and
# simplified Chinese, and a CJK font for the labels.
RUNTIME_PACKAGES=(python3 python3-venv python3-pip libzbar0 tesseract-ocr tesseract-ocr-eng
                  tesseract-ocr-chi-sim fonts-wqy-microhei)
# What only the test suite needs (browser tests drive Debian's own Chromium).
TEST_PACKAGES=()

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "scanedge setup: missing system packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

make_venv() {
    local py="${PYTHON:-python3}"
    if ! python_ok "$py"; then
        echo "scanedge setup: $py is missing or older than 3.11" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ] || ! python_ok .venv/bin/python; then
        say "creating .venv with $("$py" --version)"
        rm -rf .venv
        "$py" -m venv .venv
    fi
    # Reinstall only when the dependency list changed.
    local stamp=.venv/.scanedge-installed want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing scanedge and its Python dependencies into .venv"
        .venv/bin/python -m pip install -q --upgrade pip
        .venv/bin/python -m pip install -q -e '.[dev]'
        echo "$want" > "$stamp"
    fi
}

cmd="${1:-install}"
[ $# -gt 0 ] && shift
case "$cmd" in
    install)
        apt_install "${RUNTIME_PACKAGES[@]}"
        make_venv
        say "ready: .venv/bin/scanedge --help"
        ;;
    demo)
        apt_install "${RUNTIME_PACKAGES[@]}"
        make_venv
        exec .venv/bin/scanedge serve --demo "$@"
        ;;
    test)
        apt_install "${RUNTIME_PACKAGES[@]}" ${TEST_PACKAGES[@]+"${TEST_PACKAGES[@]}"}
        make_venv
        say "ruff"
        .venv/bin/ruff check .
        say "pytest"
        exec .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: scripts/setup.sh demo|test|install [args]" >&2
        exit 2
        ;;
esac
