"""HTTP routes of the Block Storage API v3."""
