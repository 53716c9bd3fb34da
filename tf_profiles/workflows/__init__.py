"""Workflows that drive several layers: refresh then export, and the update (ingest, refresh, fine-tune, publish)."""
