"""The package's version, in a module of its own so that modules never import the package root.

Model files and run records note it; ``actionable.__version__`` re-exports it.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
