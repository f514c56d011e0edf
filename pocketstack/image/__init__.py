"""The image service (Glance v2): image records, members, tags, and image data in a pluggable store."""
