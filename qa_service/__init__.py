"""Serve questions over a news index: retrieval, extractive answers, HTTP API."""
