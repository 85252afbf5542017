-- A legacy contact's last communication before the import (R-CUST-7, R-CUST-13): the five
-- years run from it, not from the day of the import.
ALTER TABLE contacts ADD COLUMN last_contact_before_import date;

-- Set while an address changed by staff waits for its owner to confirm it: until then no
-- mail but that confirmation goes to the person.
ALTER TABLE contacts ADD COLUMN email_pending_since timestamptz;
