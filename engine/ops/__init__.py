"""The commands people run around the engine: replay and uplift (backtests), explain and
privacy (a contact's story and rights), rules check, the demo and its generators (journeys, and
realistic multi-day histories), `kairos run`, and the audit of actions against their history.
Each module is one command, imported lazily by the CLI."""
