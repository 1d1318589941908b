"""Offline tools around the reading path: raw data conversion and the LMM prompt generation."""
