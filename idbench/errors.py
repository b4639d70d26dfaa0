"""The one error type for user mistakes.

Anything a user can get wrong (an unknown name, a bad option, d > D, a malformed suite, data that is
missing offline) raises :class:`IdbenchError` with a message that says what was wrong and how to fix
it. The CLI prints that message as one line and exits with status 2; everything else is a bug and
keeps its traceback.
"""


class IdbenchError(ValueError):
    """A user mistake, with a message that says what to fix."""
