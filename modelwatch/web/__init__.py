"""What both HTTP services (serving and the monitor) answer the same way: JSON errors
(errors.py), the bearer-token check of their write paths (auth.py) and the request body
limit (limits.py)."""
