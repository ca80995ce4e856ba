"""Set-based queries over customers, compiled and run by the core on behalf of plugins."""
