-- A web signing job's PDF may be signed into one of its empty signature fields (issue 18): the field's fully
-- qualified name, chosen on upload; none: a new signature field.
ALTER TABLE sign_job_files ADD COLUMN field TEXT;
