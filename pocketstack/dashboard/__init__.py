"""The web dashboard: server-rendered pages over the services' public REST APIs, with the user's own token."""
