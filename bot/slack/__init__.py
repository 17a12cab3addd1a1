"""Slack's Web API, reached through one gateway (see gateway.py)."""
