"""crm services: every write to CRM data goes through a function here. Functions validate first
(raising `core.errors.ValidationFailed` / `NotFound` / `Conflict`), then act in one transaction."""
