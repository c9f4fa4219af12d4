"""Accounts, their secrets and tokens, signing keys: identity as the administrator manages it."""
