"""What a depositor action can fail with; every message is meant to be shown to the user, with the options it
names (`vaultbot.options`) in the front end's words."""

from typing import TYPE_CHECKING

from vaultbot.options import NamesOptions

if TYPE_CHECKING:
    from depositor.flows import Action  # flows raises these errors: its Literal for the type only

QUOTED_CHARS = 80  # enough of a bad value to recognise it; input can be absurdly long


def quoted(value: object) -> str:
    """repr(value) for an error message, cut at QUOTED_CHARS."""
    text = repr(value)
    return text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS] + "..."


class DepositorError(Exception):
    """Base class: the message says what is wrong and, where it can, what to do."""


class BadInput(NamesOptions, DepositorError, ValueError):
    """A malformed amount, address or option (the message names it)."""


class NotAVault(DepositorError):
    """The address given answers the vault's views with nothing, a revert or what does not decode."""


class Refusal(DepositorError):
    """The vault would refuse (or did refuse) the action: paused, over a limit, not liquid, not enough balance,
    or the price moved past the minimum-out guard. Checked before sending whenever possible."""


class GuardRefusal(Refusal):
    """The price moved past the action's minimum-out (or maximum-in) guard; `action` says which guard, so a
    front end can name its own control for loosening it."""

    def __init__(self, message: str, action: "Action") -> None:
        super().__init__(message)
        self.action = action
