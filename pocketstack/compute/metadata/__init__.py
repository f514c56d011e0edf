"""The compute metadata API (nova-api-metadata): what guests read at 169.254.169.254 through the proxy."""
