"""Schedules as pytrees: ``schedule(count) -> value`` with their parameters as leaves."""
