"""Segmentation methods: thresholds, seeded watershed, random-forest pixel classification."""
