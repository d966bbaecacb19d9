"""Message templates: rendering (library), SMS segments, and `kairos templates check|preview`."""

from connectors.templates.library import Library, Links, TemplateProblem, context_of
from connectors.templates.sms import Segments, segments

__all__ = ["Library", "Links", "Segments", "TemplateProblem", "context_of", "segments"]
