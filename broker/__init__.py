"""Data Resource Broker: the HTTP service over the catalog."""
