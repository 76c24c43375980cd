CREATE TABLE transfers (
  id serial PRIMARY KEY,
  from_account integer NOT NULL REFERENCES accounts (id),
  to_account integer NOT NULL REFERENCES accounts (id),
  amount_cents integer NOT NULL CHECK (amount_cents > 0),
  made_at timestamptz NOT NULL DEFAULT now()
);

-- Which test file wrote here: each file inserts its name, and finds no other.
CREATE TABLE visits (test_file text PRIMARY KEY);
