"""Filter trees over customers, for `Gate.count` and `Gate.members` (`consentry.query.ast`,
handed to plugins): `Condition` on an attribute, `EventCount` of events, `And`, `Or`, `Not`."""

from consentry.query.ast import And, Condition, EventCount, Node, Not, Or, Scalar

__all__ = ["And", "Condition", "EventCount", "Node", "Not", "Or", "Scalar"]
