"""The OpenAPI document: its refinement (served by the app), its export and client tooling."""
