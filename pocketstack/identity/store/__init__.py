"""All of identity's SQL: one module per kind of record, each function one `Database.run` transaction.

Handlers in `identity/api/` parse, enforce policy, call these and render the rows they return."""
