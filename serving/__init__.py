"""modelwatch serving: the Flask app that serves the registry's `production` model.

`modelwatch.serving.app.create_app` builds the WSGI app; `serving/gunicorn.conf.py` runs it under
gunicorn with Prometheus multiprocess metrics; `modelwatch.log` holds the prediction log.
"""
