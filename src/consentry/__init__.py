"""Consentry: a self-hosted, privacy-first consent and preference service."""

__version__ = "0.1.0"
