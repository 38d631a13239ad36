"""The audit trail is append-only in the database itself, whatever the code above it does: a
trigger refuses every UPDATE and TRUNCATE of core_auditevent, and every DELETE unless the
transaction declared itself the retention prune (`SET LOCAL crm.audit_prune = 'on'`, issued
only by core.services.audit.audit_prune).

A test database sets `crm.audit_truncate = 'on'` for itself (tests/conftest.py), so that a
transactional test's flush may empty the table; no production database sets it."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION core_auditevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('crm.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'TRUNCATE' AND current_setting('crm.audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % of core_auditevent refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER core_auditevent_no_update_delete
BEFORE UPDATE OR DELETE ON core_auditevent
FOR EACH ROW EXECUTE FUNCTION core_auditevent_refuse_change();

CREATE TRIGGER core_auditevent_no_truncate
BEFORE TRUNCATE ON core_auditevent
FOR EACH STATEMENT EXECUTE FUNCTION core_auditevent_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS core_auditevent_no_truncate ON core_auditevent;
DROP TRIGGER IF EXISTS core_auditevent_no_update_delete ON core_auditevent;
DROP FUNCTION IF EXISTS core_auditevent_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("core", "0003_api_key_usage")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
