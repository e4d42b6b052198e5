-- The execution document is stored as the JSON text FlowMate wrote, not as jsonb. Every
-- execution is written once to three times and read back as text, so jsonb's parse on every
-- write (and its print on every read) was pure cost: over 5,000 inserted rows it was about
-- 30 us of PostgreSQL CPU per row, a third of the insert. The two queries that look inside
-- (the `step` filter of the listing and the usage report) cast the text to jsonb as they go.
ALTER TABLE executions ALTER COLUMN doc TYPE text USING doc::text;
