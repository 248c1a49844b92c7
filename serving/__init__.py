"""modelwatch serving: the Flask app that serves the registry's `production` model.

`modelwatch.serving.app.create_app` builds the WSGI app; `serving/gunicorn.conf.py` runs it under
gunicorn with Prometheus multiprocess metrics; `modelwatch.log` holds the prediction log.
"""

__all__ = ["create_app"]


def create_app(config=None):
    from modelwatch.serving.app import create_app as _create_app

    return _create_app(config)
