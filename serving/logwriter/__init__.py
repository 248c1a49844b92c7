"""Serving's write path into the prediction log (modelwatch.log): a background writer that
batches rows off the request thread and spills them to disk while the store is down."""
