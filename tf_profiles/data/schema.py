"""The one feature spec that loaders, training, evaluation and export read.

Column names of the generic input files and the names of the model's input
features live here only, so training and serving cannot drift apart.
"""

# === Generic input files ===
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
ITEM_COLUMNS = ("item_id", "title")
ITEM_OPTIONAL = ("description", "tags")
USER_COLUMNS = ("user_id",)
TAG_SEPARATOR = "|"

# === Model features ===
USER_ID = "user_id"
HISTORY = "history"  # [B, H] item ids, oldest first, "" is padding.
HISTORY_RATING = "history_rating"  # [B, H] float, 0 where unknown.
HISTORY_TEXT_EMBEDDING = "history_text_embedding"  # [B, H, E], all-zero = use stored.
USER_TEXT_EMBEDDING = "user_text_embedding"  # [B, E], all-zero = use stored.
ITEM_ID = "item_id"
ITEM_TEXT_EMBEDDING = "item_text_embedding"  # [B, E], all-zero = use stored.
ITEM_PROBABILITY = "item_probability"  # training only: logQ correction.
PADDING_ID = ""
