"""The hub: orders and commands for the devices, the events they send. See docs/sync.md."""
