#!/usr/bin/env bash
# The main job on the embedded default data: set up, convert MovieLens-100K,
# train, evaluate against the baselines (the table is printed), export a
# versioned SavedModel for TF Serving into saved_models/ml-100k/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
RUN=${RUN:-runs/ml-100k}
.venv/bin/tf-profiles data ml-100k --out "$RUN/data"
.venv/bin/tf-profiles train --interactions "$RUN/data/interactions.csv" \
  --items "$RUN/data/items.csv" --users "$RUN/data/users.csv" --output "$RUN/model" "$@"
.venv/bin/tf-profiles evaluate --model "$RUN/model"
.venv/bin/tf-profiles export --model "$RUN/model" --export-base saved_models/ml-100k
