"""gunicorn settings of the bare Flask app: the same worker model as modelwatch's
(serving/gunicorn.conf.py: gthread, MODELWATCH_WORKERS x MODELWATCH_THREADS, keep-alive 5)
and nothing else."""

import os

workers = int(os.environ.get("MODELWATCH_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("MODELWATCH_THREADS", "4"))
preload_app = False
keepalive = 5
timeout = 60
control_socket_disable = True
loglevel = "warning"
