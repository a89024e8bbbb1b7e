"""Domain voice (placeholder, being written)."""
