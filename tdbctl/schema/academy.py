"""Domain academy (placeholder, being written)."""
