"""Authentication and authorization: password files, ACLs, HTTP and Redis
sources, SCRAM, per-client modifiers; each one a provider on the hook chain."""
