"""State extractor for sharing application state across handlers.

The state lives on the application and every handler reads it through ``State``.
"""


class State:
    """A typed view of the application's shared state."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


def from_app(app):
    """Read the shared state that an application carries for its handlers."""
    store = app.extensions
    value = store.get("state")
    return State(value)
