"""The architectures ktrack builds and boots: one data file each (``<name>.toml``), loaded by
``loader`` into the frozen ``model.Arch``; ``target.Target`` pairs one with a base config."""
