"""Domain chattrain (placeholder, being written)."""
