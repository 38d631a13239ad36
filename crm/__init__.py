"""The customer base: customers and their identities (personal data encrypted and masked),
profiles, tags, groups (社群), orders, interactions and consent, written through services (the
integration API's bulk ingestion, the admin) and read through selectors. Built on core;
segments and campaigns build on it."""
