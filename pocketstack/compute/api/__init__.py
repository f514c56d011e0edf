"""Compute API v2.1 routes. `ROUTERS` lists every router module's `router`, in the order they are mounted."""
