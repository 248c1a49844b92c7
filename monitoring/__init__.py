"""modelwatch monitoring: drift, integrity, performance and concept drift as a library.

The monitor service is built on these; each works on a user's own frames
(docs/DESIGN.md, "Monitoring as a library"):

====================================== ======================================================
``modelwatch.monitoring.drift``        ``ReferenceProfile`` (once, at training time),
                                       ``detect_drift`` (per column, Evidently's tests and
                                       verdicts, ~100x faster), ``prediction_drift``
``modelwatch.monitoring.multivariate`` ``ReconstructionDrift``: PCA reconstruction error
                                       (NannyML)
``modelwatch.monitoring.integrity``    ``check_integrity``: missing, types, range, unseen
                                       categories, swapped columns
``modelwatch.monitoring.calculators``  the contract every monitor follows (``fit`` on the
                                       reference, ``calculate`` on a window): realized and
                                       estimated performance (CBPE, DLE) with reference
                                       bounds, input drift, concept drift
``modelwatch.monitoring.reference``    ``MonitoringReference.from_scores``: the scored,
                                       labelled rows and profile the calculators are fitted
                                       on (``modelwatch.monitoring.suite.fit_calculators``)
``modelwatch.monitoring.concept``      ``ErrorStreamDetector`` (ADWIN / Page-Hinkley),
                                       ``accuracy_divergence``, ``calibration_drift``
``modelwatch.monitoring.report``       ``drift_report``: Evidently's HTML report of a window
``modelwatch.cli.drift``               ``drift_command``: ``modelwatch drift REFERENCE CURRENT``
====================================== ======================================================
"""
