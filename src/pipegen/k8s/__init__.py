"""Kubernetes objects pipegen generates (custom resources, Jobs, Services) as plain dicts, shared by targets."""
