"""Offline retrieval evaluation: gold sets, metrics, TREC run files, benchmarks."""
