"""Engines: one computation (the calculators' partial, merge and finish) run where the rows are.

`plan` is what every engine runs: the calculators' aggregates of a part of the log, how
two combine, and the window they finish into. `local` runs it in this process over the
parts of a Parquet export (an hour's file at a time) or a store's rows; `spark` runs the
per-part step on Spark executors (Parquet or PostgreSQL over JDBC) and finishes on the
driver. Only `spark` imports pyspark, and only when it is imported itself.
"""
