"""The shared kernel: settings, errors, security, storage, HTTP client, observability."""
