"""modelwatch monitoring: drift, integrity, performance and concept drift as a library.

See DESIGN.md, "Monitoring as a library".
"""
