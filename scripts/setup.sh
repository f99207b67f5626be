#!/usr/bin/env bash
# One entry point for a fresh Debian / Raspberry Pi OS machine (run as root, or with the
# system packages already installed):
#   scripts/setup.sh demo [serve args]   install, load the demo orders, run the edge service
#   scripts/setup.sh demo --fresh        the same, after removing the last demo's data (./var)
#   scripts/setup.sh test [pytest args]  install, run ruff, mypy and the whole test suite
#   scripts/setup.sh install             install only (system packages + .venv)
#   scripts/setup.sh packages            the run-time system packages only (systemd/install.sh)
#   scripts/setup.sh rapidocr [PYTHON]   the RapidOCR step only, into PYTHON's environment
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the product needs at run time: zbar for pyzbar, Tesseract 5 with English and
# simplified Chinese, and a CJK font for the labels.
RUNTIME_PACKAGES=(python3 python3-venv python3-pip libzbar0 tesseract-ocr tesseract-ocr-eng
                  tesseract-ocr-chi-sim fonts-wqy-microhei libusb-1.0-0)
# What only the test suite needs (browser tests drive Debian's own Chromium).
TEST_PACKAGES=(chromium chromium-driver)

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

# RapidOCR for the waybill reader (docs/waybill.md, "Engines"): PaddleOCR models on ONNX
# Runtime, shipped inside the rapidocr-onnxruntime wheel (nothing is downloaded at run time).
# Its metadata requires the GUI build opencv-python, which would shadow our
# opencv-python-headless (same cv2 module, X11/Qt libraries on a headless device). pyproject
# cannot say "without that dependency", so: its real requirements come from the extra
# scanedge[rapidocr], and the package itself is installed here with --no-deps. The 1.4 line is
# the last one with the models inside the wheel (the newer "rapidocr" package fetches them).
# It needs Python < 3.13; where it cannot be installed the reader falls back to Tesseract.
RAPIDOCR_PACKAGE='rapidocr-onnxruntime>=1.4.4,<1.5'

install_rapidocr() {
    local py="$1"
    "$py" -c 'import rapidocr_onnxruntime' 2>/dev/null && return 0
    if "$py" -m pip install -q --no-deps "$RAPIDOCR_PACKAGE"; then
        # opencv-python must not have come along (it would replace the headless cv2)
        if "$py" -m pip show -q opencv-python >/dev/null 2>&1; then
            echo "scanedge setup: opencv-python is installed next to opencv-python-headless" >&2
        fi
    else
        echo "scanedge setup: $RAPIDOCR_PACKAGE could not be installed; the waybill reader" \
             "uses Tesseract only" >&2
    fi
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
        .venv/bin/python -m pip install -q -e '.[dev,rapidocr]'
        echo "$want" > "$stamp"
    fi
    install_rapidocr .venv/bin/python
    typecheck_tree
}

# The installed names (scanedge.edge ...) as folders for mypy, which cannot follow the editable
# install's import hook: build/typecheck/scanedge/edge -> edge/ and so on (docs/development.md).
typecheck_tree() {
    mkdir -p build/typecheck/scanedge
    : > build/typecheck/scanedge/__init__.py
    local d
    for d in edge ocr printers sync; do
        ln -sfn "../../../$d" "build/typecheck/scanedge/$d"
    done
}

cmd="${1:-install}"
[ $# -gt 0 ] && shift
case "$cmd" in
    install)
        apt_install "${RUNTIME_PACKAGES[@]}"
        make_venv
        say "ready: .venv/bin/scanedge --help"
        ;;
    packages)
        # One package list for both: systemd/install.sh builds its own venv under /opt.
        apt_install "${RUNTIME_PACKAGES[@]}"
        ;;
    rapidocr)
        # The same RapidOCR step for another venv (systemd/install.sh's, under /opt), after
        # "pip install 'scanedge[rapidocr]'" there: scripts/setup.sh rapidocr VENV/bin/python
        install_rapidocr "${1:-.venv/bin/python}"
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
        say "mypy (the domain and the store: pyproject.toml [tool.mypy])"
        .venv/bin/mypy
        say "pytest"
        exec .venv/bin/python -m pytest "$@"
        ;;
    *)
        echo "usage: scripts/setup.sh demo|test|install|packages|rapidocr [args]" >&2
        exit 2
        ;;
esac
