"""Runtimes: I/O, ordering and storage around the pipeline's one drain, no business logic.

`embedded` runs everything in one process (no broker); `kafka` is the batch runtime on a
Kafka cluster. Both decide the same actions for the same events.
"""
