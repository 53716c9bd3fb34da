"""Column names of the generic input files (the model's feature names are in
:mod:`tf_profiles.features.spec`)."""

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")
ITEM_COLUMNS = ("item_id", "title")
ITEM_OPTIONAL = ("description", "tags")
USER_COLUMNS = ("user_id",)
TAG_SEPARATOR = "|"
