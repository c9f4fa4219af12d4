"""The catalog domain: what data exists, who owns it, how fresh and how sensitive it is.

Never imports `broker` or FastAPI; the service layer in `broker` builds on it.
"""
