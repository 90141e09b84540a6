"""``python -m actionable`` runs the command line (a new user's first try when the script is not on PATH)."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_actionable_shows_the_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "actionable", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "synthesize" in done.stdout and "Usage: actionable" in done.stdout
