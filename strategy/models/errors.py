"""The one exception of the model layer."""


class ModelError(RuntimeError):
    """A model artifact is missing, corrupt or does not fit its input, or there is too little data to train one."""
