"""modelwatch: the command line and the embedded stack that tie training, serving and
monitoring together."""
