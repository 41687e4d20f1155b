"""ktrack package."""
