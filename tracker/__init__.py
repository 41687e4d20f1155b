"""ktrack: does an out-of-tree kernel patch set apply, build and boot on every kernel release?"""

__version__ = "0.1.0"
