from engine.testing.scenario import *  # noqa: F403
