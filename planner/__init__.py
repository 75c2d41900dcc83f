"""Decisions: budgets, strategies, allocation, plans and adaptive runtime sessions."""
