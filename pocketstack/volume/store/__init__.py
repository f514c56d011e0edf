"""All of the block storage API's SQL: one module per kind of record, each function one `Database.run` transaction.

Writes that depend on policy or on the record's state take a callback that runs inside the transaction on the
loaded record (`authorize`: raises when the caller may not act on it): raising there rolls the whole change back.
Rows come back with their relationships loaded (selectin), for the handlers' views."""
