-- The personnel register (R-PERS-1 … R-PERS-5). The identity code, bank account and salary
-- data are AES-256-GCM ciphertexts under a key derived from the application key, which is
-- never in the database; the identity code's keyed hash finds duplicates.
CREATE TABLE employees (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    identity_code bytea,
    identity_code_hash bytea UNIQUE,
    email text,
    home_address text,
    bank_account bytea,
    salary bytea,
    employment_start date NOT NULL,
    employment_end date,
    duties text NOT NULL DEFAULT '',
    education text,
    experience text,
    courses text,
    -- The last day each group is kept, set when the employment ends (R-PERS-5).
    private_until date,
    payroll_until date,
    record_until date,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX employees_name ON employees (lower(name), id);
CREATE INDEX employees_private_until ON employees (private_until) WHERE private_until IS NOT NULL;
CREATE INDEX employees_payroll_until ON employees (payroll_until) WHERE payroll_until IS NOT NULL;
CREATE INDEX employees_record_until ON employees (record_until) WHERE record_until IS NOT NULL;
