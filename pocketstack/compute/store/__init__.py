"""All of the compute family's SQL, one module per kind of row. Handlers and managers call these; nothing else
under compute/ builds a query."""
