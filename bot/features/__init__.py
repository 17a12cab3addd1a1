"""Optional features that join the runtime through `setup(runtime)`: reminders, digests, channel
notifications. Each registers what it needs (store change hooks, notifier outbox handlers,
scheduled jobs) so the core does not grow a branch per feature."""
