"""The request helpers' former home: `pocketstack/compute/bodies.py` now (re-exported for the compute-admin
modules still importing them from here; lead: remove after the merge)."""

from pocketstack.compute.bodies import display_name, parse, query_bool, wrapped

__all__ = ["display_name", "parse", "query_bool", "wrapped"]
