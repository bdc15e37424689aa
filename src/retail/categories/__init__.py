"""The categories service."""
