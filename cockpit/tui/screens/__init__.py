"""The cockpit's screens: the main screen and the modals, one per module."""

from cockpit.tui.screens.confirm import ConfirmScreen
from cockpit.tui.screens.deadman import DeadmanScreen
from cockpit.tui.screens.help import HelpScreen
from cockpit.tui.screens.prompt import TextPromptScreen

__all__ = ["ConfirmScreen", "DeadmanScreen", "HelpScreen", "TextPromptScreen"]
