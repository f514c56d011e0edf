"""REST clients one service uses to call another (pooled, keep-alive, request id and token propagated)."""
