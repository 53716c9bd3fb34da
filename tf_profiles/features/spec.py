"""The one feature spec: every feature and signature name, read by all consumers.

Training examples, the :class:`~tf_profiles.features.preprocessor.Preprocessor`,
the towers, the servable's signatures, the export metadata and the client
all name features from here, so training and serving cannot drift apart.
"""
import dataclasses
from typing import Dict

from tf_profiles.data.schema import TAG_SEPARATOR

# === Raw features (what examples and requests carry) ===
USER_ID = "user_id"
HISTORY = "history"  # [B, H] item ids, oldest first, PADDING_ID anywhere is ignored.
HISTORY_RATING = "history_rating"  # [B, H] float, 0 where unknown.
USER_TEXT = "user_text"  # [B] free text; "" = the text stored for the user.
ITEM_ID = "item_id"
ITEM_TEXT = "item_text"  # [B] text; "" = the text stored for the item.
ITEM_PROBABILITY = "item_probability"  # training only: logQ correction.
NEXT_ITEMS = "next_items"  # [B, H] training only: the event after each history slot.
PADDING_ID = ""

# === Dense features (Preprocessor outputs, tower inputs) ===
USER_INDEX = "user_index"  # [B] int, 0 = not in the user vocabulary.
USER_TEXT_EMBEDDING = "user_text_embedding"  # [B, E]
ITEM_INDEX = "item_index"  # [...] int, 0 = not in the item vocabulary.
ITEM_TEXT_EMBEDDING = "item_text_embedding"  # [..., E]
HISTORY_INDEX = "history_index"  # [B, H] int: ITEM_INDEX of each history item.
HISTORY_ROWS = "history_rows"  # [B, H] int: item-catalogue row (0: padding or not held).
HISTORY_TEXT_EMBEDDING = "history_text_embedding"  # [B, H, E]
HISTORY_MASK = "history_mask"  # [B, H] bool, True = a real event.
HISTORY_EMBEDDINGS = "history_embeddings"  # [B, H, D] item-tower outputs.

# === Serving contract ===
SERVING_DEFAULT = "serving_default"
USER_EMBEDDING = "user_embedding"
ITEM_EMBEDDING = "item_embedding"
LOOKUP_PROFILES = "lookup_profiles"
TEXT_SENTIMENT = "text_sentiment"
TEXT = "text"  # [B] what a user wrote (a review, a comment).
SIGNATURE_INPUTS: Dict[str, tuple] = {
    SERVING_DEFAULT: (USER_ID, HISTORY, USER_TEXT),
    USER_EMBEDDING: (USER_ID, HISTORY, USER_TEXT),
    ITEM_EMBEDDING: (ITEM_ID, ITEM_TEXT),
    LOOKUP_PROFILES: (USER_ID,),
    TEXT_SENTIMENT: (TEXT,),
}
SIGNATURE_OUTPUTS: Dict[str, tuple] = {
    SERVING_DEFAULT: ("item_ids", "scores"),
    USER_EMBEDDING: ("embedding",),
    ITEM_EMBEDDING: ("embedding",),
    LOOKUP_PROFILES: ("found", "embedding", "profile_text", "interests", "interest_weights"),
    # P(the text is positive) by the model's sentiment head; NaN for "" and
    # for every text when the model was trained without event text (no head).
    TEXT_SENTIMENT: ("positive_probability",),
}
SIGNATURES = tuple(SIGNATURE_INPUTS)
# A shard version (export/shards.py) serves one signature: the top-k of its
# items for a batch of user vectors.
TOP_K = "top_k"
QUERY = "query"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """The sizes that go with the names above, for one trained model.

    Written into every export's metadata (``to_dict``), so a reader of an
    export finds every name and size in one place.
    """
    max_history: int
    text_dim: int
    embedding_dim: int

    def to_dict(self) -> dict:
        return {
            **dataclasses.asdict(self),
            "padding_id": PADDING_ID, "tag_separator": TAG_SEPARATOR,
            "signatures": {name: {"inputs": list(SIGNATURE_INPUTS[name]),
                                  "outputs": list(SIGNATURE_OUTPUTS[name])}
                           for name in SIGNATURES},
        }
