"""The console proxies (nova-serialproxy and nova-novncproxy): websockets to the guests' consoles, opened by the
console tokens the compute API hands out."""
