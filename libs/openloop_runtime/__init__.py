"""The runtime every OpenLoop service shares: settings, server bootstrap, errors,
tracing, logging, database access and migrations, and upstream clients."""
