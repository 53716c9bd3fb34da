#!/usr/bin/env bash
# The main job on the embedded default data: set up, convert MovieLens-100K,
# train a model with the last events held out (leave-one-out; validation picks
# the epochs), refit it on the training + validation events for those epochs
# (the events every baseline fits on), evaluate the refit against the
# baselines (the table is printed), train the deployable model on every event
# for the epochs validation picked, and export that one as a versioned
# SavedModel for TF Serving into saved_models/ml-100k/.
# Extra arguments go to the held-out training; the others read its
# config.json, so all three are trained the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
RUN=${RUN:-runs/ml-100k}
DATA=(--interactions "$RUN/data/interactions.csv" --items "$RUN/data/items.csv"
      --users "$RUN/data/users.csv")
.venv/bin/tf-profiles data ml-100k --out "$RUN/data"
.venv/bin/tf-profiles train "${DATA[@]}" --output "$RUN/model" "$@"
.venv/bin/tf-profiles train "${DATA[@]}" --config "$RUN/model/config.json" \
  --refit --epochs-from "$RUN/model" --output "$RUN/refit"
.venv/bin/tf-profiles evaluate --model "$RUN/refit"
.venv/bin/tf-profiles train "${DATA[@]}" --config "$RUN/model/config.json" \
  --holdout none --epochs-from "$RUN/model" --output "$RUN/deploy"
.venv/bin/tf-profiles export --model "$RUN/deploy" --export-base saved_models/ml-100k
