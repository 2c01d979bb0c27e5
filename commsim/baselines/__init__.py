"""Separated source + channel coding baselines."""
