"""The read-only web console for data teams: rule health, every contact's story, live decisions.

`source.py` says what the console reads from a runtime; the embedded runtime and the Kafka
runtimes each provide one, and the pages are the same over both.
"""
