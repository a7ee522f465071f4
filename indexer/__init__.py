"""Build and maintain the search index of a Chinese news archive."""
