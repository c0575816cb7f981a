"""Generic building blocks, one concern per module."""
