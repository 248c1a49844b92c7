"""modelwatch: the command line and the embedded stack that ties training, serving and monitoring together."""
