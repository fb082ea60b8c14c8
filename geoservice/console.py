"""What the command line prints besides its answers: messages and progress, on stderr.

One console for the whole command line (the ETL's loads print through it too), so that a
spinner and the lines printed under it never interleave; stdout stays for answers
(JSON, tables, a new key).
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console(stderr=True, highlight=False, soft_wrap=True)
"""Messages on stderr (no colour guessing, long lines kept whole)."""


def progress() -> Progress:
    """A transient spinner with the task's description and the time it has taken."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
