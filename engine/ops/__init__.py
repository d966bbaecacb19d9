"""The commands people run around the engine: replay and uplift (backtests), explain and
privacy (a contact's story and rights), rules check, the demo and its generator, `kairos run`.
Each module is one command, imported lazily by the CLI."""
