"""HTTP routes of the image API v2."""
