"""`pocketstack coverage`: the OpenStack api-ref operations each service implements (see report.py)."""
