"""Data in: table contracts, IO, exact estimators and per-prompt statistics. Imports nothing of ours."""
