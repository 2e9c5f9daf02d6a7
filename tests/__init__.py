"""The test suite: a folder per package folder, shared/ for the top-level modules, cli/ for the entry points."""
