"""Retail portal backend: six FastAPI services and the small kernel they share."""
