"""The block storage service (Cinder v3): API, scheduler, volume manager and its backends."""
