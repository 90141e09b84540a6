"""``python -m actionable``: the same command line as ``actionable``."""

from actionable.cli import app

__all__ = ["app"]

if __name__ == "__main__":
    app(prog_name="actionable")
