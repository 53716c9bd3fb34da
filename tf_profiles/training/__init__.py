"""Training: the Keras fit loop with early stopping, distribution strategies, fine-tuning on new events."""
