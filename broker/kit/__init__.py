"""Shared HTTP plumbing: sessions, pages and cursors, ETags, idempotency, input checks, problems."""
