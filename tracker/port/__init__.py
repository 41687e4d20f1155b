"""Three-way forward-port of a patch set version to a release (see service.py)."""
