"""The root of the errors a person running tf_profiles can fix.

Bad data, a bad flag or setting, a missing or unusable file, a state that
needs a step first (a refresh before an export): the command line prints a
:class:`UserError` as one line with exit code 2. Any other exception is a
bug and keeps its traceback. It subclasses ValueError, as the checks it
replaced did, so code that caught those still does.
"""


class UserError(ValueError):
    """Something the user can fix; the message names what and where."""
