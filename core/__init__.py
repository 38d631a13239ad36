"""Shared infrastructure below every product app, not about customers: domain error types, the
integration API's keys, authentication, permissions, pagination, filters, parsers and error
mapping, accepted input values, admin base classes, deadlock retry and advisory locks."""
