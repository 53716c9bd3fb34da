"""Column names of the generic input files (the model's feature names are in
:mod:`tf_profiles.features.spec`)."""

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
# Optional: a review, comment or query that came with the event.
EVENT_TEXT = "text"
# Longer event texts are cut here: the encoder reads only its first
# text_max_length tokens (a few hundred characters), and a 1 MB paste must
# not bloat the store or the text cache.
MAX_EVENT_TEXT_CHARS = 4000
ITEM_COLUMNS = ("item_id", "title")
ITEM_OPTIONAL = ("description", "tags")
USER_COLUMNS = ("user_id",)
TAG_SEPARATOR = "|"
# The stars every rating is read on (lowest, highest): the user tower scales
# ratings by the top, interests weigh them around the lower middle, and text
# feedback maps P(positive) onto it. One scale, so a rating means the same
# wherever it is read.
RATING_SCALE = (1.0, 5.0)
