"""The local development server: TF Serving's gRPC and REST APIs over versioned SavedModels, for tests and trying things out."""
