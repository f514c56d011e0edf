"""Distributed mode: every service its own process (`pocketstack serve ROLE`), on RabbitMQ and PostgreSQL.

`roles` is the table of servable roles, `serve` runs one of them (with API worker processes), `deploy` is
`pocketstack up --distributed` (the whole set as processes on one machine).
"""
