"""The servable: a SavedModel version with its signatures, warm-up records and TF Serving configs; sharded and streamed catalogues."""
