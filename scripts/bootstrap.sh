#!/usr/bin/env bash
# Create .venv (once) and install the project into it. Idempotent: a second run installs nothing.
# torch is installed first and pinned literally: an unpinned torch can pull a multi-GB CUDA build.
# The install is recorded by the hash of pyproject.toml (not its date, which a fresh clone resets):
# an environment installed with extras also serves a plain install of the same pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
want="$(.venv/bin/python -c 'import hashlib,sys; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest())')"
installed() {  # is this pyproject.toml installed with these extras (or, when none are asked, with any)?
  local stamps=(".venv/.installed${extras:+-$extras}") stamp
  [ -z "$extras" ] && stamps+=(.venv/.installed-*)
  for stamp in "${stamps[@]}"; do
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
  done
  return 1
}
if ! installed; then
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  echo "$want" > ".venv/.installed${extras:+-$extras}"
fi
