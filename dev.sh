#!/usr/bin/env bash
# One entry point for a fresh machine: it installs what symbackprop needs (a Python
# virtual environment with the package and its test tools, TeX Live from Debian's
# packages for the PDF printouts and Debian's Chromium for the interactive page's
# browser tests), then runs what you ask for.
#
#   bash dev.sh example   derive the worked example of docs/notation.md (3x3 input, 2x2 kernel, padding 1)
#   bash dev.sh test      run the whole test suite (HYPOTHESIS_PROFILE=thorough for the long one)
#   bash dev.sh setup-zh  also install xelatex and the CJK fonts for `latex --lang zh --pdf`
#                         (only when asked: SYMBACKPROP_ZH=1 bash dev.sh test does the same first)
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
python=${PYTHON:-python3}

ensure_python() {
    if [ ! -x "$venv/bin/python" ]; then
        # System site-packages: reuse NumPy/SymPy wheels the machine already has.
        "$python" -m venv --system-site-packages "$venv"
    fi
    if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
        "$venv/bin/python" -m pip install --quiet --editable ".[test]"
        touch "$venv/.installed"
    fi
}

ensure_latex() {
    # TikZ (texlive-pictures) draws the figures of the printouts.
    if command -v pdflatex >/dev/null && command -v pdftoppm >/dev/null &&
            kpsewhich tikz.sty >/dev/null; then
        return
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "dev.sh: installing TeX Live and poppler-utils from Debian's packages" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        texlive-latex-base texlive-latex-recommended texlive-pictures \
        texlive-fonts-recommended lmodern poppler-utils >/dev/null
}

ensure_chinese_latex() {
    # `latex --lang zh --pdf`: xelatex and ctex with its Fandol fonts. Large (a few
    # hundred MB), so never part of the default set-up or CI: only when asked.
    if command -v xelatex >/dev/null && kpsewhich ctex.sty >/dev/null; then
        return
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "dev.sh: installing xelatex and the Chinese TeX Live packages from Debian's packages" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        texlive-xetex texlive-lang-chinese texlive-lang-cjk >/dev/null
}

ensure_chromium() {
    # The browser tests drive Debian's Chromium through the Python playwright
    # package; never `playwright install`, which downloads a browser build of its own.
    if [ -x /usr/bin/chromium ]; then
        return
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "dev.sh: installing Chromium from Debian's packages" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >/dev/null
}

ensure_torch() {
    # PyTorch is no dependency of symbackprop: the tests use it as an independent oracle
    # (its convolutions and autograd) and run the array-API modules on its CPU tensors.
    # 2.13.0 is the CPU build (a pinned version; a bare "torch" may pull a CUDA build of
    # several GB).  Without it those tests skip.
    if "$venv/bin/python" -c "import torch" 2>/dev/null; then
        return
    fi
    echo "dev.sh: installing PyTorch 2.13.0 (CPU) for the comparison tests" >&2
    "$venv/bin/python" -m pip install --quiet torch==2.13.0 ||
        echo "dev.sh: PyTorch could not be installed; the tests that compare with it skip" >&2
}

case "${1:-}" in
    example)
        ensure_python
        "$venv/bin/symbackprop" derive conv2d --kernel 2 --padding 1 --input 3x3
        ;;
    setup-zh)
        ensure_python
        ensure_latex
        ensure_chinese_latex
        ;;
    test)
        ensure_python
        ensure_latex
        ensure_chromium
        ensure_torch
        if [ "${SYMBACKPROP_ZH:-}" = 1 ]; then
            ensure_chinese_latex
        fi
        shift
        # One test process per core (pytest-xdist), unless the caller chose (-n 0: one).
        parallel=(-n auto --dist worksteal)
        for argument in "$@"; do
            case "$argument" in -n|-n*|--numprocesses*) parallel=() ;; esac
        done
        "$venv/bin/python" -m pytest "${parallel[@]}" "$@"
        ;;
    *)
        echo "usage: bash dev.sh example | test [pytest options] | setup-zh" >&2
        exit 2
        ;;
esac
