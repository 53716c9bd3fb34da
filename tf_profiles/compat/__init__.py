"""check-serving: whether an export runs in an older TF Serving release (its ops, attributes and answers)."""
