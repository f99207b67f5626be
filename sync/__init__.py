"""Offline-first sync: the edge's sync client and the hub. See docs/sync.md."""
